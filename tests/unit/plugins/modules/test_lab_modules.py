"""Unit tests of the lab modules with their system calls replaced by fakes."""

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils.lab import image, net, vm
from ansible_collections.nswap.cluster.plugins.modules import lab_image, lab_network, lab_vm

from tests.unit.module_harness import run_module

IMAGE = {
    "key": "bookworm-abc",
    "base": "/i/base.qcow2",
    "kernel": "/i/vmlinuz",
    "initrd": "/i/initrd.img",
    "sshkey": "/i/sshkey",
}


class FakeNet:
    """Stands in for the namespace/bridge/tap calls of net.py."""

    def __init__(self, state):
        self.state = state
        self.created = []

    def network_state(self, lab, subnet, taps):
        return self.state

    def ensure_network(self, lab, subnet, taps):
        self.created.append((lab, subnet, taps))
        return True


@pytest.fixture
def fake_net(monkeypatch):
    fake = FakeNet({"netns": None, "bridge": None, "taps": []})
    monkeypatch.setattr(net, "network_state", fake.network_state)
    monkeypatch.setattr(net, "ensure_network", fake.ensure_network)
    return fake


def test_network_created_when_missing(monkeypatch, fake_net):
    failed, result = run_module(monkeypatch, lab_network, {"lab": "t1", "taps": 2})
    assert not failed and result["changed"]
    assert fake_net.created == [("t1", "10.77.0.0/24", 2)]
    assert result["bridge_address"] == "10.77.0.254/24"
    assert result["diff"]["after"]["taps"] == ["tap0", "tap1"]


def test_network_check_mode_changes_nothing(monkeypatch, fake_net):
    failed, result = run_module(monkeypatch, lab_network, {"lab": "t1"}, check_mode=True)
    assert not failed and result["changed"]
    assert fake_net.created == []


def test_network_unchanged_when_complete(monkeypatch, fake_net):
    fake_net.state = net.wanted_state("t1", "10.77.0.0/24", 4)
    failed, result = run_module(monkeypatch, lab_network, {"lab": "t1"})
    assert not failed and not result["changed"]
    assert fake_net.created == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"lab": "Bad_Name"}, "lab name 'Bad_Name' is invalid"),
        ({"subnet": "10.77.0.0/30", "taps": 4}, "too small for 4 VMs"),
        ({"subnet": "not-a-net"}, "is not an IPv4 network"),
        ({"taps": 0}, "at least one VM"),
    ],
)
def test_network_bad_input(monkeypatch, fake_net, args, message):
    failed, result = run_module(monkeypatch, lab_network, args)
    assert failed and message in result["msg"]
    assert fake_net.created == []


def test_network_absent_kills_lab_vms_and_deletes_namespace(monkeypatch):
    calls = []
    monkeypatch.setattr(net, "netns_exists", lambda ns: ns == "nswap-lab-t1")
    monkeypatch.setattr(vm, "lab_processes", lambda lab: [111, 112])
    monkeypatch.setattr(vm, "kill_processes", lambda pids: calls.append(("kill", pids)))
    monkeypatch.setattr(net, "run", lambda argv, **kw: calls.append(tuple(argv)))
    failed, result = run_module(monkeypatch, lab_network, {"lab": "t1", "state": "absent"})
    assert not failed and result["changed"]
    assert calls == [("kill", [111, 112]), ("ip", "netns", "del", "nswap-lab-t1")]


def vm_args(**overrides):
    args = {
        "lab": "t1",
        "name": "client1",
        "index": 0,
        "address": "10.77.0.11/24",
        "memory_mib": 512,
        "image": IMAGE,
        "workdir": "/nonexistent/lab",
    }
    args.update(overrides)
    return args


def test_vm_running_with_same_config_is_unchanged(monkeypatch):
    monkeypatch.setattr(vm, "hardware_virtualization", lambda: False)
    monkeypatch.setattr(
        vm, "status", lambda spec: {"ssh_port": 40001, "pid": 42, "serial_log": "/x.serial"}
    )
    monkeypatch.setattr(vm, "start", lambda spec: pytest.fail("must not restart"))
    failed, result = run_module(monkeypatch, lab_vm, vm_args())
    assert not failed and not result["changed"]
    assert result["ssh_port"] == 40001 and result["accel"] == "tcg"


def test_vm_started_when_not_running(monkeypatch):
    started = []
    monkeypatch.setattr(vm, "hardware_virtualization", lambda: False)
    monkeypatch.setattr(vm, "status", lambda spec: None)
    monkeypatch.setattr(
        vm,
        "start",
        lambda spec: started.append(spec) or {"ssh_port": 40002, "pid": 7, "serial_log": "/s"},
    )
    failed, result = run_module(monkeypatch, lab_vm, vm_args())
    assert not failed and result["changed"] and result["ssh_port"] == 40002
    assert started[0].memory_mib == 512 and started[0].base == "/i/base.qcow2"
    assert result["diff"]["after"]["address"] == "10.77.0.11/24"


def test_vm_check_mode_starts_nothing(monkeypatch):
    monkeypatch.setattr(vm, "status", lambda spec: None)
    monkeypatch.setattr(vm, "start", lambda spec: pytest.fail("check mode must not start"))
    failed, result = run_module(monkeypatch, lab_vm, vm_args(), check_mode=True)
    assert not failed and result["changed"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"memory_mib": 100}, "memory_mib=100 is too small"),
        ({"cpus": 0}, "cpus=0; use 1 or more"),
        ({"image": {"key": "k"}}, "image is missing base, kernel, initrd"),
    ],
)
def test_vm_bad_input(monkeypatch, overrides, message):
    monkeypatch.setattr(vm, "start", lambda spec: pytest.fail("must not start"))
    failed, result = run_module(monkeypatch, lab_vm, vm_args(**overrides))
    assert failed and message in result["msg"]


def test_image_cached_is_unchanged(monkeypatch):
    monkeypatch.setattr(
        image, "ensure_image", lambda cache_dir, check_mode: (False, dict(IMAGE, dir="/i"))
    )
    failed, result = run_module(monkeypatch, lab_image, {"cache_dir": "/tmp/c"})
    assert not failed and not result["changed"] and result["key"] == "bookworm-abc"


def test_image_absent_removes_cache(monkeypatch, tmp_path):
    (tmp_path / "images" / "bookworm-abc").mkdir(parents=True)
    failed, result = run_module(
        monkeypatch, lab_image, {"cache_dir": str(tmp_path), "state": "absent"}
    )
    assert not failed and result["changed"]
    assert not (tmp_path / "images").exists()
    failed, result = run_module(
        monkeypatch, lab_image, {"cache_dir": str(tmp_path), "state": "absent"}
    )
    assert not failed and not result["changed"]


def test_home_relative_paths_reach_the_code_expanded(monkeypatch, tmp_path):
    # cache_dir and workdir are type=path, so AnsibleModule expands "~" (defaults included);
    # the modules rely on that instead of calling expanduser themselves.
    monkeypatch.setenv("HOME", str(tmp_path))
    seen = []
    monkeypatch.setattr(
        image,
        "ensure_image",
        lambda cache_dir, check_mode: seen.append(cache_dir) or (False, dict(IMAGE, dir="/i")),
    )
    failed, result = run_module(monkeypatch, lab_image, {})
    assert not failed and seen == [str(tmp_path / ".cache" / "nswap")]
    monkeypatch.setattr(vm, "hardware_virtualization", lambda: False)
    monkeypatch.setattr(vm, "status", lambda spec: seen.append(spec.workdir))
    failed, result = run_module(monkeypatch, lab_vm, vm_args(workdir="~/labs/t1"), check_mode=True)
    assert not failed and seen[-1] == str(tmp_path / "labs" / "t1")
