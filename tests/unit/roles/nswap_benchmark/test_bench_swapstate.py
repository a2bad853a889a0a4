"""The benchmark's swap-state keeper (roles/nswap_benchmark/files/nswap_bench_swapstate.py):
parsing, comparing, and restoring against a simulated node (swap areas with the kernel's
priority rules, nswap.ko's configfs devices, nswap-client.service)."""

import importlib.util
import json
import os
import subprocess

import pytest

from tests import REPO

SCRIPT = os.path.join(REPO, "roles", "nswap_benchmark", "files", "nswap_bench_swapstate.py")

PROC_SWAPS = """Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/nswap0                             partition\t1048572\t\t0\t\t100
/swap file                              file\t\t524284\t\t1024\t\t-2
/dev/vda3                               partition\t2097148\t\t0\t\t10
"""


@pytest.fixture(scope="module")
def swapstate():
    spec = importlib.util.spec_from_file_location("nswap_bench_swapstate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def device(index, power="1", servers=("10.77.0.12:7405",)):
    return {
        "size": "1073741824",
        "connections_per_server": "2",
        "timeout_ms": "10000",
        "retries": "3",
        "servers": list(servers),
        "power": power,
        "index": str(index),
    }


class FakeNode:
    """Swap areas, configfs devices and the boot unit, with the kernel's rules: no two
    activations of one area, auto priorities -2, -3, ... given back at swapoff, a swap
    header only where mkswap (or the deploy) wrote one, no power-off while swapped on."""

    def __init__(self, swaps=(), devices=None, unit=None, module=True, headers=None):
        self.swaps = [dict(a) for a in swaps]
        self.devices = {k: dict(v) for k, v in (devices or {}).items()}
        self.unit = dict(unit or {"enabled": "not-found", "active": "inactive", "device": None})
        self.module = module
        self.headers = set(headers if headers is not None else [a["name"] for a in swaps])
        self.conf_priority = 100
        self.log = []

    def read_state(self):
        return {
            "version": 1,
            "swaps": [dict(a) for a in self.swaps],
            "nswap_devices": self.read_devices(),
            "nswap_module": self.module,
            "unit": dict(self.unit),
        }

    def read_devices(self):
        return {k: dict(v) for k, v in self.devices.items()}

    def read_unit(self):
        return dict(self.unit)

    def _exists(self, name):
        if name.startswith("/dev/nswap"):
            return any(
                "/dev/nswap%s" % d["index"] == name and d["power"] == "1"
                for d in self.devices.values()
            )
        return True

    def swapon(self, name, priority):
        self.log.append(("swapon", name, priority))
        if any(a["name"] == name for a in self.swaps):
            return subprocess.CompletedProcess([], 255, "", "Device or resource busy")
        if not self._exists(name) or name not in self.headers:
            return subprocess.CompletedProcess([], 255, "", "read swap header failed")
        if priority < 0:
            priority = min([-1] + [a["priority"] for a in self.swaps if a["priority"] < 0]) - 1
        kind = "file" if name.startswith("/swap") else "partition"
        self.swaps.append({"name": name, "type": kind, "priority": priority})
        return subprocess.CompletedProcess([], 0, "", "")

    def swapoff(self, name):
        self.log.append(("swapoff", name))
        (area,) = [a for a in self.swaps if a["name"] == name]
        self.swaps.remove(area)
        if area["priority"] < 0:  # the kernel renumbers the automatic priorities
            for other in self.swaps:
                if other["priority"] < area["priority"]:
                    other["priority"] += 1

    def mkswap(self, name):
        self.log.append(("mkswap", name))
        self.headers.add(name)

    def remove_device(self, name):
        self.log.append(("remove", name))
        assert not any(a["name"] == "/dev/nswap" + self.devices[name]["index"] for a in self.swaps)
        del self.devices[name]

    def create_device(self, name, attrs):
        self.log.append(("create", name))
        self.module = True
        self.devices[name] = dict(attrs)

    def restart_unit(self):
        """nswap-client down; up: recreate the configured device, mkswap, swapon -p."""
        self.log.append(("restart",))
        name = self.unit["device"]
        dev = "/dev/nswap0"
        if any(a["name"] == dev for a in self.swaps):
            self.swapoff(dev)
        self.devices.pop(name, None)
        self.devices[name] = device(0)
        self.module = True
        self.mkswap(dev)
        self.swapon(dev, self.conf_priority)
        self.unit["active"] = "active"

    def set_unit_enabled(self, enabled):
        self.log.append(("enable", enabled))
        self.unit["enabled"] = "enabled" if enabled else "disabled"

    def unload_module(self):
        self.log.append(("unload",))
        self.module = False


DEPLOYED_UNIT = {"enabled": "enabled", "active": "active", "device": "nswap0"}


def deployed_node():
    """A deployed client: nswap0 at 100 above disk swap at 10 (README's setup)."""
    return FakeNode(
        swaps=[
            {"name": "/dev/nswap0", "type": "partition", "priority": 100},
            {"name": "/dev/vda3", "type": "partition", "priority": 10},
        ],
        devices={"nswap0": device(0)},
        unit=DEPLOYED_UNIT,
    )


def test_parse_proc_swaps_keeps_order_priorities_and_spaces(swapstate):
    assert swapstate.parse_proc_swaps(PROC_SWAPS) == [
        {"name": "/dev/nswap0", "type": "partition", "priority": 100},
        {"name": "/swap file", "type": "file", "priority": -2},
        {"name": "/dev/vda3", "type": "partition", "priority": 10},
    ]
    assert swapstate.parse_proc_swaps(PROC_SWAPS.splitlines()[0] + "\n") == []


def test_parse_proc_swaps_rejects_other_text(swapstate):
    with pytest.raises(ValueError, match="not /proc/swaps"):
        swapstate.parse_proc_swaps("MemTotal: 1 kB\n")
    with pytest.raises(ValueError, match="expected 5 fields"):
        swapstate.parse_proc_swaps("Filename Type Size Used Priority\n/dev/x partition\n")


def test_parse_servers_and_unit_conf(swapstate):
    assert swapstate.parse_servers("10.0.0.2:7405 up\n[fd00::2]:7405 connecting\n") == [
        "10.0.0.2:7405",
        "[fd00::2]:7405",
    ]
    conf = '# managed\nNSWAP_DEVICE=nswap0\nNSWAP_SERVERS="a:1 b:2"\nNSWAP_PRIORITY=100\n'
    assert swapstate.parse_unit_conf(conf) == {
        "NSWAP_DEVICE": "nswap0",
        "NSWAP_SERVERS": "a:1 b:2",
        "NSWAP_PRIORITY": "100",
    }


def test_same_state_has_no_differences(swapstate):
    state = deployed_node().read_state()
    assert swapstate.differences(state, json.loads(json.dumps(state))) == []


def test_differences_name_what_changed(swapstate):
    saved = deployed_node().read_state()
    now = json.loads(json.dumps(saved))
    now["swaps"] = now["swaps"][::-1]
    now["nswap_devices"]["nswapbench"] = device(1)
    now["nswap_devices"]["nswap0"]["servers"] = ["10.77.0.13:7405"]
    now["unit"]["active"] = "inactive"
    now["nswap_module"] = False
    found = swapstate.differences(saved, now)
    assert found == [
        "swap areas (name type priority, in order): saved [/dev/nswap0 partition 100, "
        "/dev/vda3 partition 10], now [/dev/vda3 partition 10, /dev/nswap0 partition 100]",
        "nswap devices: saved ['nswap0'], now ['nswap0', 'nswapbench']",
        "nswap device nswap0 servers: saved ['10.77.0.12:7405'], now ['10.77.0.13:7405']",
        "nswap.ko: saved loaded, now not loaded",
        "nswap-client.service active: saved 'active', now 'inactive'",
    ]


def test_a_different_priority_is_a_difference(swapstate):
    saved = deployed_node().read_state()
    now = json.loads(json.dumps(saved))
    now["swaps"][0]["priority"] = -2
    assert len(swapstate.differences(saved, now)) == 1


def test_restore_after_the_benchmark_turned_every_area_off(swapstate):
    """What scripts/main --quick left: no swap area at all (the bug this fixes)."""
    node = deployed_node()
    saved = node.read_state()
    node.swapoff("/dev/nswap0")
    node.swapoff("/dev/vda3")
    node.log.clear()
    actions = swapstate.restore(node, saved)
    assert swapstate.differences(saved, node.read_state()) == []
    # nswap0 is still configured and its header on the servers: swapon is enough
    assert node.log == [("swapon", "/dev/nswap0", 100), ("swapon", "/dev/vda3", 10)]
    assert actions == ["swapon /dev/nswap0 priority 100", "swapon /dev/vda3 priority 10"]


def test_restore_removes_the_runs_own_area_and_device(swapstate):
    node = deployed_node()
    saved = node.read_state()
    node.swapoff("/dev/nswap0")
    node.swapoff("/dev/vda3")
    node.devices["nswapbench"] = device(1)
    node.headers.add("/dev/nswap1")
    node.swapon("/dev/nswap1", -1)
    swapstate.restore(node, saved)
    assert swapstate.differences(saved, node.read_state()) == []
    assert ("swapoff", "/dev/nswap1") in node.log and ("remove", "nswapbench") in node.log


def test_restore_recreates_a_unit_device_through_the_unit(swapstate):
    node = deployed_node()
    saved = node.read_state()
    node.swapoff("/dev/nswap0")
    node.swapoff("/dev/vda3")
    node.remove_device("nswap0")
    node.log.clear()
    swapstate.restore(node, saved)
    assert swapstate.differences(saved, node.read_state()) == []
    assert node.log[0] == ("restart",)


def test_restore_keeps_the_saved_order(swapstate):
    """Only the disk area is on: it goes off so nswap0 comes back first, as saved."""
    node = deployed_node()
    saved = node.read_state()
    node.swapoff("/dev/nswap0")
    node.log.clear()
    swapstate.restore(node, saved)
    assert [a["name"] for a in node.swaps] == ["/dev/nswap0", "/dev/vda3"]
    assert node.log[0] == ("swapoff", "/dev/vda3")


def test_restore_leaves_a_correct_node_alone(swapstate):
    node = deployed_node()
    assert swapstate.restore(node, node.read_state()) == []
    assert node.log == []


def test_restore_fixes_a_wrong_priority(swapstate):
    node = deployed_node()
    saved = node.read_state()
    node.swapoff("/dev/vda3")
    node.swapoff("/dev/nswap0")
    node.swapon("/dev/nswap0", 5)
    node.swapon("/dev/vda3", 10)
    swapstate.restore(node, saved)
    assert swapstate.differences(saved, node.read_state()) == []


def test_automatic_negative_priorities_come_back(swapstate):
    node = FakeNode(swaps=[], module=False, headers=["/swapfile", "/dev/vdb"])
    node.swapon("/swapfile", -1)
    node.swapon("/dev/vdb", -1)
    assert [a["priority"] for a in node.swaps] == [-2, -3]
    saved = node.read_state()
    node.swapoff("/swapfile")
    node.swapoff("/dev/vdb")
    swapstate.restore(node, saved)
    assert swapstate.differences(saved, node.read_state()) == []


def test_lost_header_of_an_nswap_device_is_made_afresh(swapstate):
    """The servers forgot the pages (nswapd restarted): mkswap, since the area is off."""
    node = FakeNode(
        swaps=[{"name": "/dev/nswap0", "type": "partition", "priority": 100}],
        devices={"nswap0": device(0)},
    )
    saved = node.read_state()
    node.swapoff("/dev/nswap0")
    node.headers.clear()
    actions = swapstate.restore(node, saved)
    assert swapstate.differences(saved, node.read_state()) == []
    assert actions[0].startswith("mkswap /dev/nswap0 (swap header lost")


def test_a_disk_area_that_lost_its_header_fails_loudly(swapstate):
    node = deployed_node()
    saved = node.read_state()
    node.swapoff("/dev/nswap0")
    node.swapoff("/dev/vda3")
    node.headers.discard("/dev/vda3")
    with pytest.raises(swapstate.RestoreError, match="swapon /dev/vda3 at priority 10 failed"):
        swapstate.restore(node, saved)
    assert ("mkswap", "/dev/vda3") not in node.log  # never mkswap a disk


def test_module_the_benchmark_loaded_is_unloaded(swapstate):
    node = FakeNode(swaps=[], module=False)
    saved = node.read_state()
    node.module = True
    swapstate.restore(node, saved)
    assert node.module is False and node.log == [("unload",)]


def test_unit_enablement_is_put_back(swapstate):
    node = deployed_node()
    saved = node.read_state()
    node.set_unit_enabled(False)
    swapstate.restore(node, saved)
    assert node.unit["enabled"] == "enabled"


def test_begin_saves_and_restore_puts_back_and_removes_the_file(swapstate, tmp_path, capsys):
    node = deployed_node()
    state = str(tmp_path / "lib" / "saved-swap.json")
    assert swapstate.main(["begin", "--state", state], system=node) == 0
    saved = json.loads(open(state).read())
    assert saved["swaps"][0]["name"] == "/dev/nswap0"
    node.swapoff("/dev/nswap0")
    node.swapoff("/dev/vda3")
    capsys.readouterr()
    assert swapstate.main(["restore", "--state", state], system=node) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] and out["differences"] == []
    assert not os.path.exists(state)


def test_begin_restores_what_an_interrupted_run_saved_first(swapstate, tmp_path, capsys):
    node = deployed_node()
    state = str(tmp_path / "saved-swap.json")
    assert swapstate.main(["begin", "--state", state], system=node) == 0
    # the run is killed half way: only the benchmark's own area is on
    node.swapoff("/dev/nswap0")
    node.swapoff("/dev/vda3")
    node.headers.add("/dev/mapper/nswapbench-swap")
    node.swapon("/dev/mapper/nswapbench-swap", -1)
    capsys.readouterr()
    assert swapstate.main(["begin", "--state", state], system=node) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] and "swapoff /dev/mapper/nswapbench-swap" in out["actions"]
    # saved anew: the deployed state, not the interrupted run's
    assert [a["name"] for a in json.loads(open(state).read())["swaps"]] == [
        "/dev/nswap0",
        "/dev/vda3",
    ]


def test_restore_that_cannot_match_fails_and_keeps_the_file(swapstate, tmp_path, capsys):
    node = deployed_node()
    state = str(tmp_path / "saved-swap.json")
    swapstate.main(["begin", "--state", state], system=node)
    node.swapoff("/dev/nswap0")
    node.swapoff("/dev/vda3")
    node.headers.discard("/dev/vda3")
    capsys.readouterr()
    assert swapstate.main(["restore", "--state", state], system=node) == 1
    captured = capsys.readouterr()
    assert "swapon /dev/vda3 at priority 10 failed" in captured.err
    assert json.loads(captured.out)["error"]
    assert os.path.exists(state)


def test_restore_without_a_saved_state_fails(swapstate, tmp_path, capsys):
    assert swapstate.main(["restore", "--state", str(tmp_path / "none.json")], FakeNode()) == 1
    assert "nothing was saved" in capsys.readouterr().err


def test_a_state_file_of_another_version_is_refused(swapstate, tmp_path, capsys):
    state = tmp_path / "saved-swap.json"
    state.write_text(json.dumps({"version": 99}))
    assert swapstate.main(["begin", "--state", str(state)], system=FakeNode()) == 1
    assert "state version 99" in capsys.readouterr().err


def test_real_system_reads_fake_proc_and_configfs(swapstate, tmp_path):
    swaps = tmp_path / "swaps"
    swaps.write_text(PROC_SWAPS)
    item = tmp_path / "configfs" / "nswap0"
    item.mkdir(parents=True)
    for key, value in device(0).items():
        text = "".join("%s up\n" % s for s in value) if key == "servers" else value + "\n"
        (item / key).write_text(text)
    system = swapstate.System(
        proc_swaps=str(swaps), configfs=str(tmp_path / "configfs"), module=str(tmp_path / "mod")
    )
    state = system.read_state()
    assert [a["name"] for a in state["swaps"]] == ["/dev/nswap0", "/swap file", "/dev/vda3"]
    assert state["nswap_devices"] == {"nswap0": device(0)}
    assert state["nswap_module"] is False
