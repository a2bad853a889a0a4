"""The pure helpers of nswap.cluster.swap (plugins/module_utils/swap.py)."""

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import swap as util

MIB = 1024 * 1024
GIB = 1024 * MIB

# --- swapon --show and /proc/swaps ------------------------------------------------


def test_swapon_show_parsed_with_escaped_names():
    text = (
        "/dev/dm-1 partition 8589930496 1048576 -2\n"
        "/var/swap\\x20files/swap\\x5cone file 1073737728 0 10\n"
        "/swap\\xc3\\xa9 file 4096 0 -3\n"
        "\n"
    )
    assert util.parse_swapon_show(text) == [
        dict(name="/dev/dm-1", type="partition", size=8589930496, used=1048576, priority=-2),
        dict(name="/var/swap files/swap\\one", type="file", size=1073737728, used=0, priority=10),
        dict(name="/swap\u00e9", type="file", size=4096, used=0, priority=-3),
    ]


def test_swapon_show_ignores_headings_and_empty_output():
    assert util.parse_swapon_show("") == []
    assert util.parse_swapon_show("NAME TYPE SIZE USED PRIO\n/dev/vdb partition 1 0 -2\n") == [
        dict(name="/dev/vdb", type="partition", size=1, used=0, priority=-2)
    ]


def test_proc_swaps_parsed_in_bytes_with_octal_escapes():
    text = (
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/dev/vdb                                partition\t1048572\t\t1024\t\t-2\n"
        "/tmp/sw\\040test                         file\t\t16380\t\t0\t\t5\n"
    )
    assert util.parse_proc_swaps(text) == [
        dict(name="/dev/vdb", type="partition", size=1048572 * 1024, used=1024 * 1024, priority=-2),
        dict(name="/tmp/sw test", type="file", size=16380 * 1024, used=0, priority=5),
    ]
    assert util.parse_proc_swaps("Filename\tType\tSize\tUsed\tPriority\n") == []


def test_blkid_export_parsed_with_escapes():
    text = "DEVNAME=/tmp/sw test\nLABEL=my\\ label\nUUID=b9d7\nVERSION=1\nTYPE=swap\n"
    assert util.parse_blkid_export(text) == {
        "DEVNAME": "/tmp/sw test",
        "LABEL": "my label",
        "UUID": "b9d7",
        "VERSION": "1",
        "TYPE": "swap",
    }


def test_meminfo_and_mem_available():
    info = util.parse_meminfo(
        "MemTotal:       16000000 kB\nMemFree:  1000 kB\nMemAvailable:   2048 kB\n"
        "Buffers: 10 kB\nCached: 20 kB\nHugePages_Total:       0\n"
    )
    assert info["MemAvailable"] == 2048 * 1024 and info["HugePages_Total"] == 0
    assert util.mem_available(info) == 2048 * 1024
    del info["MemAvailable"]
    assert util.mem_available(info) == (1000 + 10 + 20) * 1024


# --- sizes, priorities, tags --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (4096, 4096),
        ("1073741824", GIB),
        ("512K", 512 * 1024),
        ("512k", 512 * 1024),
        ("64M", 64 * MIB),
        ("2G", 2 * GIB),
        ("2GiB", 2 * GIB),
        ("2 GB", 2 * GIB),
        ("1.5G", 3 * GIB // 2),
        ("1T", 1024 * GIB),
        ("100B", 100),
        ("512MB", 512 * MIB),
        ("512mib", 512 * MIB),
        (" 1g ", GIB),
    ],
)
def test_parse_size(value, size):
    assert util.parse_size(value) == size


@pytest.mark.parametrize(
    "value", ["", "G", "1X", "-1G", "1,5G", "0", 0, -5, "1 G B", True, None, "1e3", "2GiBB"]
)
def test_parse_size_rejects(value):
    with pytest.raises(ValueError, match="size="):
        util.parse_size(value)


@pytest.mark.parametrize("priority", [None, -1, 0, 1, 32767])
def test_priority_in_range(priority):
    assert util.check_priority(priority) == priority


@pytest.mark.parametrize("priority", [-2, 32768, 100000])
def test_priority_out_of_range(priority):
    with pytest.raises(ValueError) as info:
        util.check_priority(priority)
    assert str(info.value).startswith(
        "priority=%d is out of range; the valid range is -1..32767" % priority
    )


def test_priority_matches():
    assert util.priority_matches(None, -7) and util.priority_matches(None, 5)
    assert util.priority_matches(-1, -2) and not util.priority_matches(-1, 0)
    assert util.priority_matches(5, 5) and not util.priority_matches(5, -2)


def test_tag_spec():
    assert util.tag_spec("LABEL=fast") == ("LABEL", "fast")
    assert util.tag_spec('UUID="ab-cd"') == ("UUID", "ab-cd")
    assert util.tag_spec("partuuid=1234") == ("PARTUUID", "1234")
    assert util.tag_spec("/dev/vdb") is None
    assert util.tag_spec("/srv/LABEL=x") is None
    assert util.tag_spec("FOO=bar") is None


def test_escapes_round_trip():
    path = "/srv/my swap\\x\tz"
    escaped = util.escape_fstab(path)
    assert escaped == "/srv/my\\040swap\\134x\\011z"
    assert util.unescape_octal(escaped) == path
    assert util.unescape_hex("/a\\x20b\\x5cc") == "/a b\\c"


# --- swapoff feasibility ----------------------------------------------------------


def test_swapoff_need_has_margin():
    assert util.swapoff_need(0) == 0
    assert util.swapoff_need(1000 * MIB) == 1000 * MIB + 100 * MIB + 64 * MIB


def test_swapoff_check_counts_memory_and_free_space_of_other_areas():
    area = dict(name="/dev/a", size=4 * GIB, used=1000 * MIB)
    other = dict(name="/dev/b", size=1000 * MIB, used=400 * MIB)
    needed = 1164 * MIB
    assert util.swapoff_check(area, [area, other], 564 * MIB) == (True, needed, needed)
    assert util.swapoff_check(area, [area, other], 563 * MIB) == (False, needed, needed - MIB)
    # the area's own free space does not count
    assert util.swapoff_check(area, [area], 0)[0] is False
    assert util.swapoff_check(dict(area, used=0), [area], 0) == (True, 0, 0)


def test_swapoff_refusal_message():
    assert util.swapoff_refusal("/dev/x", 1164 * MIB + 1, 563 * MIB + 1) == (
        "swapoff /dev/x would need 1165 MiB but only 563 MiB are available (MemAvailable + "
        "free space on other swap areas); free memory or add swap first"
    )


# --- /etc/fstab -------------------------------------------------------------------

FSTAB = (
    "# <file system> <mount point> <type> <options> <dump> <pass>\n"
    "UUID=1111 / ext4 errors=remount-ro 0 1\n"
    "   \n"
    "# /dev/vdb none swap sw 0 0\n"
    "/dev/vdc\tnone\tswap\tsw,pri=3\t0\t0\n"
    "/dev/vdb /mnt/notswap ext4 defaults 0 2\n"
    "tmpfs /tmp tmpfs size=1g\n"
)


def vdb(spec):
    return spec == "/dev/vdb"


def test_render_swap_line():
    assert util.render_swap_line("/dev/vdb") == "/dev/vdb none swap sw 0 0"
    assert util.render_swap_line("/dev/vdb", -1, "none") == "/dev/vdb none swap sw 0 0"
    assert util.render_swap_line("/dev/vdb", 0, "both") == "/dev/vdb none swap sw,pri=0,discard 0 0"
    assert (
        util.render_swap_line("/srv/a b", 5, "pages", ["nofail"])
        == "/srv/a\\040b none swap sw,pri=5,discard=pages,nofail 0 0"
    )
    assert (
        util.render_swap_line("LABEL=x", 1, "once") == "LABEL=x none swap sw,pri=1,discard=once 0 0"
    )


def test_swap_options():
    assert util.swap_options("sw,pri=5,discard=once,nofail") == (5, "once", ["nofail"])
    assert util.swap_options("defaults,discard") == (None, "both", [])
    assert util.swap_options("sw,discard=pages,pri=-1") == (-1, "pages", [])
    assert util.swap_options("") == (None, "none", [])


def test_fstab_line_appended_rest_untouched():
    new = util.update_fstab(FSTAB, vdb, "/dev/vdb none swap sw,pri=5 0 0")
    assert new == FSTAB + "/dev/vdb none swap sw,pri=5 0 0\n"
    # a last line without newline gets one before the new line
    assert util.update_fstab("a b c\n#x", vdb, "L") == "a b c\n#x\nL\n"
    assert util.update_fstab("", vdb, "L") == "L\n"


def test_fstab_line_updated_in_place_and_duplicates_dropped():
    text = FSTAB.replace("   \n", "   \n/dev/vdb none swap sw 0 0\n") + "/dev/vdb none swap sw 0 0"
    new = util.update_fstab(text, vdb, "/dev/vdb none swap sw,pri=7 0 0")
    assert new == FSTAB.replace("   \n", "   \n/dev/vdb none swap sw,pri=7 0 0\n")


def test_fstab_equivalent_line_kept_byte_for_byte():
    text = FSTAB.replace("   \n", "   \n/dev/vdb   none swap\tsw,pri=7 0 0\r\n")
    assert util.update_fstab(text, vdb, "/dev/vdb none swap sw,pri=7 0 0") == text
    updated = util.update_fstab(text, vdb, "/dev/vdb none swap sw,pri=8 0 0")
    assert updated == FSTAB.replace("   \n", "   \n/dev/vdb none swap sw,pri=8 0 0\r\n")


def test_fstab_lines_removed():
    text = FSTAB + "/dev/vdb none swap sw 0 0\n"
    assert util.update_fstab(text, vdb, None) == FSTAB
    assert util.update_fstab(FSTAB, vdb, None) == FSTAB


def test_fstab_specs_unescaped_before_matching():
    text = "/srv/a\\040b none swap sw 0 0\n"
    assert util.find_swap_line(text, lambda spec: spec == "/srv/a b") == text.strip()
    assert util.update_fstab(text, lambda spec: spec == "/srv/a b", None) == ""
    assert util.find_swap_line(FSTAB, vdb) is None
    assert util.find_swap_line(None, vdb) is None


def test_fstab_undecodable_bytes_survive():
    text = b"/dev/vdz /m ext4 defaults 0 0 # caf\xe9\n".decode("utf-8", "surrogateescape")
    new = util.update_fstab(text, vdb, "/dev/vdb none swap sw 0 0")
    assert new.encode("utf-8", "surrogateescape").startswith(
        b"/dev/vdz /m ext4 defaults 0 0 # caf\xe9\n"
    )
