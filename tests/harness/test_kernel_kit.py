"""Pure logic of the kernel kit and the mini VM, on fixed inputs (no apt, no qemu)."""

import io
import lzma
import os
import shutil
import struct
import subprocess

import pytest

from harness import kbuild, kernel, minivm

MODULES_DEP = """\
kernel/mm/zsmalloc.ko:
kernel/drivers/block/zram/zram.ko: kernel/mm/zsmalloc.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko \
kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/configfs/configfs.ko:
kernel/drivers/some-dashed_mod.ko.xz:
""".replace("\\\n", "")

MODULES_BUILTIN = "kernel/fs/ext4/ext4.ko\nkernel/drivers/tty/serial/8250/8250.ko\n"


# --- modules.dep


@pytest.mark.parametrize(
    "path,name",
    [
        ("kernel/mm/zsmalloc.ko", "zsmalloc"),
        ("kernel/drivers/some-dashed_mod.ko.xz", "some_dashed_mod"),
        ("/abs/src/kmod/nswap.ko", "nswap"),
        ("virtio-net", "virtio_net"),
    ],
)
def test_module_name(path, name):
    assert kernel.module_name(path) == name


def test_parse_modules_dep():
    index = kernel.parse_modules_dep(MODULES_DEP)
    assert index["zram"] == ("kernel/drivers/block/zram/zram.ko", ["kernel/mm/zsmalloc.ko"])
    assert index["zsmalloc"] == ("kernel/mm/zsmalloc.ko", [])
    assert index["some_dashed_mod"][0] == "kernel/drivers/some-dashed_mod.ko.xz"


def test_module_closure_puts_dependencies_first_without_repeats():
    index = kernel.parse_modules_dep(MODULES_DEP)
    paths = kernel.module_closure(["zram", "virtio_pci", "virtio-net", "zram"], index)
    names = [kernel.module_name(p) for p in paths]
    assert len(names) == len(set(names))
    assert set(names) == {
        "zsmalloc",
        "zram",
        "virtio_ring",
        "virtio",
        "virtio_pci_legacy_dev",
        "virtio_pci_modern_dev",
        "virtio_pci",
        "failover",
        "net_failover",
        "virtio_net",
    }
    for module, dep in [
        ("zram", "zsmalloc"),
        ("virtio", "virtio_ring"),
        ("virtio_pci", "virtio"),
        ("virtio_net", "net_failover"),
        ("net_failover", "failover"),
    ]:
        assert names.index(dep) < names.index(module)


def test_module_closure_skips_builtin_and_rejects_unknown():
    index = kernel.parse_modules_dep(MODULES_DEP)
    builtin = kernel.parse_modules_builtin(MODULES_BUILTIN)
    assert builtin == {"ext4", "8250"}
    assert kernel.module_closure(["ext4"], index, builtin) == []
    with pytest.raises(kernel.KernelKitError, match="nosuchmod"):
        kernel.module_closure(["nosuchmod"], index, builtin)


# --- vmlinux extraction


def _fake_bzimage(payload, setup_sects=3, offset=0x40):
    """Just enough of the x86 boot header for _bzimage_payload, plus the payload."""
    header = bytearray((setup_sects + 1) * 512 + offset)
    header[0x1F1] = setup_sects
    header[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", header, 0x248, offset, len(payload))
    return bytes(header) + payload + b"trailing-bytes"


def test_extract_vmlinux_from_xz_bzimage(tmp_path):
    elf = b"\x7fELF" + bytes(range(256)) * 40
    vmlinuz = tmp_path / "vmlinuz"
    vmlinuz.write_bytes(_fake_bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ)))
    target = tmp_path / "vmlinux"
    assert kernel.extract_vmlinux(str(vmlinuz), str(target))
    assert target.read_bytes() == elf


def test_extract_vmlinux_unknown_compression_is_not_an_error(tmp_path):
    vmlinuz = tmp_path / "vmlinuz"
    vmlinuz.write_bytes(_fake_bzimage(b"\x28\xb5\x2f\xfd" + b"zstd-ish" * 10))
    assert not kernel.extract_vmlinux(str(vmlinuz), str(tmp_path / "vmlinux"))
    assert not (tmp_path / "vmlinux").exists()


@pytest.mark.skipif(
    shutil.which("zstd") is None, reason="needs the zstd tool (apt-get install zstd)"
)
def test_extract_vmlinux_from_zstd_bzimage_with_size_trailer(tmp_path):
    elf = b"\x7fELF" + bytes(range(256)) * 40
    frame = subprocess.run(["zstd", "-cq"], input=elf, capture_output=True, check=True).stdout
    vmlinuz = tmp_path / "vmlinuz"
    vmlinuz.write_bytes(_fake_bzimage(frame + len(elf).to_bytes(4, "little")))
    assert kernel.extract_vmlinux(str(vmlinuz), str(tmp_path / "vmlinux"))
    assert (tmp_path / "vmlinux").read_bytes() == elf
    # A trailer that does not match what came out is not a kernel of ours.
    vmlinuz.write_bytes(_fake_bzimage(frame + (len(elf) + 1).to_bytes(4, "little")))
    assert not kernel.extract_vmlinux(str(vmlinuz), str(tmp_path / "vmlinux2"))


def test_bzimage_payload_rejects_non_bzimage():
    with pytest.raises(kernel.KernelKitError, match="bzImage"):
        kernel._bzimage_payload(bytes(4096))


# --- kit cache (atomic build)


def _fake_builder(calls):
    def build(package, abi, tree, apt=None):
        calls.append(package)
        os.makedirs(os.path.join(tree, "boot"))
        os.makedirs(os.path.join(tree, "lib", "modules", abi))
        open(os.path.join(tree, "boot", "vmlinuz-" + abi), "w").close()
        with open(os.path.join(tree, kernel.COMPLETE_MARKER), "w") as marker:
            marker.write(f"{abi} format={kernel.KIT_FORMAT}\n")

    return build


def test_ensure_kernel_kit_builds_once_and_replaces_leftovers(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(kernel, "_build_kit_tree", _fake_builder(calls))
    abi = "6.1.0-99-amd64"
    # Leftovers of a killed run: a partial tree and a final dir without the marker.
    (tmp_path / f".{abi}.partial-dead").mkdir()
    (tmp_path / abi / "junk").mkdir(parents=True)

    kit = kernel.ensure_kernel_kit(cache_root=str(tmp_path), abi=abi)
    assert calls == ["linux-image-" + abi]
    assert kit.abi == abi
    assert kit.vmlinuz == str(tmp_path / abi / "boot" / f"vmlinuz-{abi}")
    assert kit.modules_dir == str(tmp_path / abi / "lib" / "modules" / abi)
    assert kit.boot_image == kit.vmlinuz  # no vmlinux in the fake kit
    assert sorted(os.listdir(tmp_path)) == [f".{abi}.lock", abi]

    assert kernel.ensure_kernel_kit(cache_root=str(tmp_path), abi=abi) == kit
    assert len(calls) == 1


def test_failed_build_leaves_no_partial_tree(tmp_path, monkeypatch):
    def broken(package, abi, tree, apt=None):
        os.makedirs(os.path.join(tree, "boot"))
        raise kernel.KernelKitError("download failed")

    monkeypatch.setattr(kernel, "_build_kit_tree", broken)
    with pytest.raises(kernel.KernelKitError):
        kernel.ensure_kernel_kit(cache_root=str(tmp_path), abi="6.1.0-99-amd64")
    assert os.listdir(tmp_path) == [".6.1.0-99-amd64.lock"]


def test_kit_of_an_older_format_is_not_complete(tmp_path):
    (tmp_path / kernel.COMPLETE_MARKER).write_text("6.1.0-56-amd64\n")
    assert not kernel.is_complete_kit(str(tmp_path))


def test_headers_error_names_the_package(monkeypatch):
    monkeypatch.setattr(kernel, "_package_installed", lambda package: False)
    with pytest.raises(kernel.KernelKitError, match="apt-get install linux-headers-6.1.0-99-amd64"):
        kernel.host_headers_build_dir(abi="6.1.0-99-amd64")


# --- mini VM pieces


def test_parse_output_splits_at_the_marker():
    marker = "MINIVM-END-0123"
    assert minivm.parse_output(f"a\nb\n\n{marker} 77\n", marker) == ("a\nb\n", 77)
    # Output without a final newline; a fake marker with another nonce is just output.
    raw = f"MINIVM-END-ffff 1\nno-newline\n{marker} 0\n"
    assert minivm.parse_output(raw, marker) == ("MINIVM-END-ffff 1\nno-newline", 0)
    assert minivm.parse_output("partial output", marker) == ("partial output", None)


def test_find_kernel_problems():
    console = "\n".join(
        [
            "[    1.0] zram: Added device: zram0",
            "[    2.0] WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:1 foo+0x1/0x2",
            "[    3.0] BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "[    4.0] INFO: task swapon:99 blocked for more than 120 seconds.",
            "[    5.0] Kernel panic - not syncing: Fatal exception",
            "[    6.0] nswap: module verification failed: signature and/or required key missing",
        ]
    )
    problems = minivm.find_kernel_problems(console)
    assert len(problems) == 4
    assert problems[0].endswith("foo+0x1/0x2")


def test_init_script_configures_what_was_asked():
    text = minivm.init_script(
        "MINIVM-END-x", ("10.99.0.2/24", None), disk_count=2, env={"SERVER": "10.99.0.1 5555"}
    )
    assert text.startswith("#!/bin/sh\n")
    assert "mount -t configfs configfs /sys/kernel/config" in text
    assert "[ -b /dev/vdb ]" in text
    assert "ip addr add 10.99.0.2/24 dev eth0" in text
    assert "ip route add default" not in text
    assert "export SERVER='10.99.0.1 5555'" in text
    assert text.rstrip().endswith("poweroff -f")
    user = minivm.init_script("M", ("10.0.2.15/24", "10.0.2.2"))
    assert "ip route add default via 10.0.2.2" in user
    assert "eth0" not in minivm.init_script("M")


def test_net_plan_rejects_bad_values():
    with pytest.raises(minivm.MiniVMError, match="net must be"):
        minivm._net_plan("bridge")
    with pytest.raises(minivm.MiniVMError, match="ADDRESS/PREFIX"):
        minivm._net_plan(minivm.NetTap("ns", "tap0", guest_cidr="10.99.0.300/24"))


def test_modules_for_adds_what_init_loads():
    assert minivm._modules_for(("zram",), [], None) == ("configfs", "zram")
    mods = minivm._modules_for(("virtio_pci",), ["d.img"], "user")
    assert mods == ("configfs", "virtio_pci", "virtio_blk", "virtio_net")


def _read_newc(blob):
    """Minimal newc reader: [(name, mode, data, rdevmajor, rdevminor)]."""
    entries, pos = [], 0
    while True:
        assert blob[pos : pos + 6] == b"070701"
        fields = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_start = pos + 110
        name = blob[name_start : name_start + namesize - 1].decode()
        data_start = name_start + namesize + (-(110 + namesize) % 4)
        data = blob[data_start : data_start + filesize]
        pos = data_start + filesize + (-filesize % 4)
        if name == "TRAILER!!!":
            return entries
        assert fields[2] == fields[3] == 0  # root-owned
        entries.append((name, fields[1], data, fields[9], fields[10]))


def test_cpio_writer_round_trip(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_bytes(b"abc")
    (tmp_path / "bin" / "tool").chmod(0o755)
    (tmp_path / "bin" / "ln").symlink_to("tool")
    out = io.BytesIO()
    writer = minivm.CpioWriter(out)
    writer.add_tree(str(tmp_path))
    writer.add_chardev("dev/console", 5, 1)
    writer.finish()
    entries = {name: rest for name, *rest in _read_newc(out.getvalue())}
    assert entries["bin"][0] == 0o40755
    assert entries["bin/tool"][:2] == [0o100755, b"abc"]
    assert entries["bin/ln"][:2] == [0o120777, b"tool"]
    assert entries["dev/console"] == [0o20600, b"", 5, 1]
    assert len(out.getvalue()) % 4 == 0


def test_netns_names_carry_prefix_and_pid():
    assert minivm.netns_name_for("minivm", pid=42) == "nswapt-minivm-42"
    with pytest.raises(minivm.MiniVMError, match="invalid"):
        minivm.netns_name_for("Bad Label")


def test_sweep_removes_only_dead_owners(monkeypatch):
    names = ["nswapt-a-1", "nswapt-b-2", "other-3", "nswapt-c-nopid"]
    deleted = []
    monkeypatch.setattr(minivm, "list_netns", lambda: list(names))
    monkeypatch.setattr(minivm, "delete_netns", deleted.append)
    monkeypatch.setattr(minivm, "_pid_alive", lambda pid: pid == 1)
    assert minivm.sweep_stale_netns() == ["nswapt-b-2", "nswapt-c-nopid"]
    assert deleted == ["nswapt-b-2", "nswapt-c-nopid"]


def _result(**overrides):
    fields = dict(exit_status=0, output="out\n", console="", wall_s=1.0)
    fields.update(overrides)
    return minivm.MiniVMResult(**fields)


def test_check_passes_clean_runs_and_names_problems_otherwise():
    assert _result().check().exit_status == 0
    with pytest.raises(minivm.MiniVMError, match="exited 3"):
        _result(exit_status=3).check()
    # The problem lines are in the message even when the console tail no longer shows them.
    console = "[ 1.0] Kernel panic - not syncing: x\n" + "[ 2.0]  ? frame\n" * 100
    panicked = _result(
        exit_status=None,
        console=console,
        error="kernel panic (see console)",
        kernel_problems=minivm.find_kernel_problems(console),
    )
    with pytest.raises(minivm.MiniVMError, match="Kernel panic - not syncing"):
        panicked.check()
    warned = _result(kernel_problems=["[ 1.0] WARNING: CPU: 0 PID: 1 at x"])
    with pytest.raises(minivm.MiniVMError, match="kernel reported problems"):
        warned.check()
    assert warned.check(allow_kernel_problems=True) is warned


# --- apt views of other suites (trixie kits)

MIRRORS = {"main": "http://mirror.test/debian", "security": "http://mirror.test/debian-security"}


def _completed(returncode=0, stdout="", stderr=""):
    return subprocess.CompletedProcess([], returncode, stdout, stderr)


def test_suite_sources_list_names_the_suite_and_its_security_updates():
    assert kernel.suite_sources_list("trixie", MIRRORS) == (
        "deb http://mirror.test/debian trixie main\n"
        "deb http://mirror.test/debian-security trixie-security main\n"
    )


def _failing_update(monkeypatch, calls):
    def fake_run(argv, timeout=600, check=True, **kwargs):
        calls.append(argv)
        return _completed(0, "Err:1 http://mirror.test/debian trixie InRelease\n", "W: Failed")

    monkeypatch.setattr(kernel, "run", fake_run)


def test_suite_apt_unreachable_without_cached_lists(tmp_path, monkeypatch):
    calls = []
    _failing_update(monkeypatch, calls)
    with pytest.raises(kernel.ArchiveUnreachableError, match="trixie archive is unreachable"):
        kernel.suite_apt("trixie", apt_root=str(tmp_path), mirrors=MIRRORS)
    assert calls[0][-1] == "update"
    assert f"Dir::State::Lists={tmp_path}/trixie/lists" in calls[0]
    sources = (tmp_path / "trixie" / "sources.list").read_text()
    assert sources == kernel.suite_sources_list("trixie", MIRRORS)


def test_suite_apt_uses_cached_lists_when_the_archive_is_unreachable(tmp_path, monkeypatch):
    _failing_update(monkeypatch, [])
    lists = tmp_path / "trixie" / "lists"
    lists.mkdir(parents=True)
    (lists / "mirror.test_debian_dists_trixie_main_binary-amd64_Packages.lz4").write_text("")
    view = kernel.suite_apt("trixie", apt_root=str(tmp_path), mirrors=MIRRORS)
    assert view == kernel.AptView("trixie", str(tmp_path / "trixie"))


def test_cached_kit_of_another_suite_needs_no_apt(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(kernel, "_build_kit_tree", _fake_builder(calls))
    abi = "6.12.57+deb13-amd64"
    view = kernel.AptView("trixie", str(tmp_path / "apt"))
    built = kernel.ensure_kernel_kit(cache_root=str(tmp_path), abi=abi, suite="trixie", apt=view)
    assert built.suite == "trixie"

    def no_apt(suite, apt_root=None):
        raise AssertionError("apt was consulted for a cached kit")

    monkeypatch.setattr(kernel, "apt_view", no_apt)
    assert kernel.ensure_kernel_kit(cache_root=str(tmp_path), abi=abi, suite="trixie") == built
    assert calls == ["linux-image-" + abi]


def test_merged_usr_modules_get_a_lib_link(tmp_path):
    (tmp_path / "usr" / "lib" / "modules" / "6.12.57+deb13-amd64").mkdir(parents=True)
    kernel._merge_usr_lib(str(tmp_path))
    assert os.readlink(tmp_path / "lib") == "usr/lib"
    assert (tmp_path / "lib" / "modules" / "6.12.57+deb13-amd64").is_dir()
    classic = tmp_path / "classic"
    (classic / "lib" / "modules").mkdir(parents=True)
    kernel._merge_usr_lib(str(classic))
    assert not os.path.islink(classic / "lib")


# --- module builds (kbuild)


def _kit(tmp_path, suite=None, abi="6.1.0-99-amd64"):
    return kernel.KernelKit(
        abi=abi,
        root=str(tmp_path),
        vmlinuz=str(tmp_path / "vmlinuz"),
        modules_dir=str(tmp_path / "modules"),
        suite=suite,
    )


def _module_tree(tmp_path):
    """src/kmod with sources plus stale build products, and its sibling src/include."""
    kmod = tmp_path / "src" / "kmod"
    kmod.mkdir(parents=True)
    (kmod / "Kbuild").write_text("obj-m := nswap.o\n")
    (kmod / "nswap_main.c").write_text("int x;\n")
    (kmod / "nswap_main.o").write_text("stale")
    (kmod / "nswap.ko").write_text("stale")
    (tmp_path / "src" / "include").mkdir()
    (tmp_path / "src" / "include" / "nswap_proto.h").write_text("/* proto */\n")
    return kmod


def _fake_make(seen, output="  CC [M]  nswap_main.o\n", returncode=0, root="/"):
    """Stands in for make: checks the copy it was pointed at and writes nswap.ko there."""

    def fake_run(argv, timeout=600, check=True, env=None, **kwargs):
        seen.append((argv, env))
        module_dir = next(arg[2:] for arg in argv if arg.startswith("M="))
        host_dir = os.path.join(root, module_dir.lstrip("/"))
        assert sorted(os.listdir(host_dir)) == ["Kbuild", "nswap_main.c"]
        assert os.path.isfile(os.path.join(host_dir, "..", "include", "nswap_proto.h"))
        with open(os.path.join(host_dir, "nswap.ko"), "w") as handle:
            handle.write("fresh module")
        return _completed(returncode, output)

    return fake_run


def test_build_module_builds_a_clean_copy_with_warnings_as_errors(tmp_path, monkeypatch):
    kmod = _module_tree(tmp_path)
    seen = []
    monkeypatch.setattr(kbuild, "run", _fake_make(seen))
    host = kbuild.BuildRoot(root="/", build_dir="/lib/modules/6.1.0-99-amd64/build")
    (ko,) = kbuild.build_module(
        _kit(tmp_path), str(kmod), str(tmp_path / "out"), [str(tmp_path / "src" / "include")], host
    )
    assert ko == str(tmp_path / "out" / "nswap.ko")
    assert (tmp_path / "out" / "nswap.ko").read_text() == "fresh module"
    argv, env = seen[0]
    assert argv[:3] == ["make", "-C", host.build_dir]
    assert {"W=1", "KCFLAGS=-Werror", "modules"} <= set(argv)
    assert env is None
    work = os.path.dirname(next(a[2:] for a in argv if a.startswith("M=")))
    assert not os.path.exists(work)  # the copy is gone
    assert (kmod / "nswap.ko").read_text() == "stale"  # the checkout is untouched


@pytest.mark.parametrize(
    "output,returncode,match",
    [
        ("WARNING: modpost: missing MODULE_LICENSE() in nswap.o\n", 0, "warnings"),
        ("nswap_main.c:1:5: error: expected ';'\n", 2, "exit 2"),
    ],
)
def test_build_module_fails_on_warnings_and_errors(
    tmp_path, monkeypatch, output, returncode, match
):
    kmod = _module_tree(tmp_path)
    monkeypatch.setattr(kbuild, "run", _fake_make([], output, returncode))
    host = kbuild.BuildRoot(root="/", build_dir="/b")
    with pytest.raises(kernel.KernelKitError, match=match) as info:
        kbuild.build_module(
            _kit(tmp_path), str(kmod), str(tmp_path / "out"), [str(tmp_path / "src/include")], host
        )
    assert output.strip() in str(info.value)
    assert not (tmp_path / "out").exists()


def test_build_module_in_a_chroot_uses_paths_inside_it(tmp_path, monkeypatch):
    kmod = _module_tree(tmp_path)
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    seen = []
    monkeypatch.setattr(kbuild, "run", _fake_make(seen, root=str(root)))
    chroot = kbuild.BuildRoot(root=str(root), build_dir="/lib/modules/6.12.57+deb13-amd64/build")
    kit = _kit(tmp_path, suite="trixie", abi="6.12.57+deb13-amd64")
    kbuild.build_module(
        kit, str(kmod), str(tmp_path / "out"), [str(tmp_path / "src/include")], chroot
    )
    argv, env = seen[0]
    assert os.path.basename(argv[0]) == "chroot" and argv[1] == str(root)
    assert argv[2:5] == ["make", "-C", chroot.build_dir]
    assert next(a for a in argv if a.startswith("M=")).startswith("M=/tmp/nswap-kbuild-")
    assert env["PATH"].startswith("/usr/local/sbin") and env["LC_ALL"] == "C"
    assert os.listdir(root / "tmp") == []


def test_build_module_cached_rebuilds_only_when_sources_or_kernel_change(tmp_path, monkeypatch):
    kmod = _module_tree(tmp_path)
    include = str(tmp_path / "src" / "include")
    out = str(tmp_path / "out")
    seen = []
    monkeypatch.setattr(kbuild, "run", _fake_make(seen))
    host = kbuild.BuildRoot(root="/", build_dir="/b")
    monkeypatch.setattr(kbuild, "buildroot_for", lambda kit: host)
    kit = _kit(tmp_path)
    first, digest = kbuild.build_module_cached(kit, str(kmod), out, [include])
    assert first == [os.path.join(out, "nswap.ko")] and len(seen) == 1
    # Same sources, same kernel: the .ko is reused.  Build products do not count.
    (kmod / "nswap_main.o").write_text("other stale object")
    assert kbuild.build_module_cached(kit, str(kmod), out, [include]) == (first, digest)
    assert len(seen) == 1
    # A changed header, another kernel, or a lost .ko each build again.
    (tmp_path / "src" / "include" / "nswap_proto.h").write_text("/* proto v2 */\n")
    _ko, digest2 = kbuild.build_module_cached(kit, str(kmod), out, [include])
    assert digest2 != digest and len(seen) == 2
    other = _kit(tmp_path, abi="6.1.0-100-amd64")
    assert kbuild.build_module_cached(other, str(kmod), out, [include])[1] != digest2
    assert len(seen) == 3
    os.unlink(first[0])
    kbuild.build_module_cached(other, str(kmod), out, [include])
    assert len(seen) == 4


def test_build_module_rejects_a_missing_source_dir(tmp_path):
    host = kbuild.BuildRoot(root="/", build_dir="/b")
    with pytest.raises(kernel.KernelKitError, match="does not exist"):
        kbuild.build_module(_kit(tmp_path), str(tmp_path / "nope"), str(tmp_path / "out"), (), host)


def test_ensure_buildroot_builds_once_per_abi(tmp_path, monkeypatch):
    calls = []

    def fake_tree(suite, abi, tree, mirrors, log):
        calls.append((suite, abi, mirrors))
        with open(os.path.join(tree, kbuild.BUILDROOT_MARKER), "w") as marker:
            marker.write(f"{abi} {suite} format={kbuild.BUILDROOT_FORMAT}\n")

    monkeypatch.setattr(kbuild, "_build_buildroot_tree", fake_tree)
    abi = "6.12.57+deb13-amd64"
    first = kbuild.ensure_buildroot("trixie", abi, str(tmp_path), MIRRORS)
    assert first == kbuild.BuildRoot(str(tmp_path / abi), f"/lib/modules/{abi}/build")
    assert kbuild.ensure_buildroot("trixie", abi, str(tmp_path), MIRRORS) == first
    assert calls == [("trixie", abi, MIRRORS)]
    assert not first.is_host and first.outside("/tmp/x") == str(tmp_path / abi / "tmp" / "x")


def test_buildroot_marker_of_another_format_is_not_complete(tmp_path):
    (tmp_path / kbuild.BUILDROOT_MARKER).write_text("6.12.57+deb13-amd64 trixie format=0\n")
    assert not kbuild.is_complete_buildroot(str(tmp_path))


def test_host_kit_builds_on_the_host(tmp_path, monkeypatch):
    monkeypatch.setattr(kbuild, "host_headers_build_dir", lambda abi: f"/lib/modules/{abi}/build")
    buildroot = kbuild.buildroot_for(_kit(tmp_path))
    assert buildroot.is_host and buildroot.env is None
    assert buildroot.command(["make"]) == ["make"]
    assert buildroot.build_dir == "/lib/modules/6.1.0-99-amd64/build"
