"""Unit tests of the lab's pure logic: apt sources, VM layout, VM specs, recipe hash."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.nswap.cluster.plugins.filter.lab_layout import lab_layout
from ansible_collections.nswap.cluster.plugins.module_utils.lab import aptsources, image, vm
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    check_lab_name,
)

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm-security

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_sources_give_main_and_security_mirrors():
    entries = list(aptsources.parse_deb822(DEB822))
    assert aptsources.mirrors_for("bookworm", entries) == {
        "main": "http://mirror.example/debian",
        "security": "http://security.example/debian-security",
    }


def test_one_line_sources_with_options():
    text = (
        "# comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
        "deb http://s.example/debian-security bookworm-security main contrib\n"
        "deb-src http://x.example/debian bookworm main\n"
    )
    entries = list(aptsources.parse_one_line(text))
    assert aptsources.mirrors_for("bookworm", entries)["main"] == "http://m.example/debian"
    assert entries[1] == (
        ["http://s.example/debian-security"],
        ["bookworm-security"],
        ["main", "contrib"],
    )


def test_missing_security_mirror_names_the_fix():
    entries = list(aptsources.parse_one_line("deb http://m.example/debian bookworm main\n"))
    with pytest.raises(LabError, match="no security mirror.*bookworm-security"):
        aptsources.mirrors_for("bookworm", entries)


def test_disabled_stanza_is_ignored():
    text = "Types: deb\nURIs: http://off.example/\nSuites: bookworm\nEnabled: no\n"
    assert list(aptsources.parse_deb822(text)) == []


def test_layout_is_clients_then_servers_with_fixed_addresses():
    vms = lab_layout("10.77.0.0/24", 1, 3)
    assert [v["name"] for v in vms] == ["client1", "server1", "server2", "server3"]
    assert [v["group"] for v in vms] == ["nswap_clients"] + ["nswap_servers"] * 3
    assert [v["ip"] for v in vms] == ["10.77.0.11", "10.77.0.12", "10.77.0.13", "10.77.0.14"]
    assert vms[0]["address"] == "10.77.0.11/24"
    assert [v["index"] for v in vms] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("subnet", "clients", "servers", "message"),
    [
        ("10.77.0.0/24", 0, 0, "at least one VM"),
        ("10.77.0.0/28", 2, 3, "too few addresses"),
        ("10.77.0.300/24", 1, 1, "lab_layout"),
    ],
)
def test_layout_rejects_bad_input(subnet, clients, servers, message):
    with pytest.raises(AnsibleFilterError, match=message):
        lab_layout(subnet, clients, servers)


@pytest.mark.parametrize("name", ["", "Default", "toolongname", "a-b", "1lab"])
def test_bad_lab_names_are_refused(name):
    with pytest.raises(LabError, match="lab name"):
        check_lab_name(name)


def spec(**overrides):
    fields = dict(
        lab="default",
        name="client1",
        index=0,
        memory_mib=512,
        cpus=1,
        swap_disk_mib=64,
        address="10.77.0.11/24",
        image_key="bookworm-x",
        base="/i/base.qcow2",
        kernel="/i/vmlinuz",
        initrd="/i/initrd.img",
        workdir="/w",
        accel="tcg",
    )
    fields.update(overrides)
    return vm.VMSpec(**fields)


def test_vm_spec_refuses_too_little_memory():
    with pytest.raises(LabError, match="memory_mib=128 is too small.*at least 256"):
        spec(memory_mib=128)


def test_config_hash_changes_with_any_field():
    base = spec().config_hash()
    assert spec().config_hash() == base
    assert spec(memory_mib=1024).config_hash() != base
    assert spec(image_key="bookworm-y").config_hash() != base


def test_qemu_argv_labels_the_process_and_wires_both_nics():
    argv = vm.qemu_argv(spec(), port=40022, tap_fd=9)
    joined = " ".join(argv)
    assert argv[argv.index("-name") + 1].startswith("nswap-lab.default.client1,")
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in joined
    assert "restrict=on" in joined
    assert "tap,id=lab,fd=9" in joined
    assert "nswaplab.addr=10.77.0.11/24" in joined
    assert "systemd.hostname=client1" in joined
    assert "serial=nswap-swap" in joined
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert "serial=nswap-swap" not in " ".join(vm.qemu_argv(spec(swap_disk_mib=0), 1, 3))


def test_recipe_hash_covers_packages_and_files(monkeypatch):
    mirrors = {"main": "http://m/", "security": "http://s/"}
    first = image.recipe_hash(image.recipe("bookworm", "6.1.0-1-amd64", mirrors))
    assert first == image.recipe_hash(image.recipe("bookworm", "6.1.0-1-amd64", mirrors))
    assert first != image.recipe_hash(image.recipe("bookworm", "6.1.0-2-amd64", mirrors))
    monkeypatch.setattr(image.guestfiles, "EXTRA_PACKAGES", ("fio",))
    assert first != image.recipe_hash(image.recipe("bookworm", "6.1.0-1-amd64", mirrors))
