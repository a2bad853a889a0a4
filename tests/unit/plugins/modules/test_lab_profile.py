"""lab_profile: parsing of QEMU/tc output, the monitor conversation, and the module
with its system calls replaced by fakes."""

import json
import os
import socket
import threading

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils.lab import profiles
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import LabError
from ansible_collections.nswap.cluster.plugins.modules import lab_profile

from tests.unit.module_harness import run_module

INFO_BLOCK_THROTTLED = """swap (#block545): /x/client1-swap.raw (raw)
    Attached to:      /machine/peripheral-anon/device[2]/virtio-backend
    Cache mode:       writethrough, direct
    I/O throttling:   bps=40000000 bps_rd=0 bps_wr=0 bps_max=0 bps_rd_max=0 bps_wr_max=0 \
iops=80 iops_rd=0 iops_wr=0 iops_max=0 iops_rd_max=0 iops_wr_max=0 iops_size=0 group=swap"""


def test_parse_throttle():
    assert profiles.parse_throttle(INFO_BLOCK_THROTTLED) == {"bps": 40000000, "iops": 80}
    unthrottled = "\n".join(INFO_BLOCK_THROTTLED.splitlines()[:3])
    assert profiles.parse_throttle(unthrottled) == {"bps": 0, "iops": 0}


def test_parse_tbf_rate():
    tbf = [{"kind": "tbf", "root": True, "options": {"rate": 12500000, "burst": 125000}}]
    assert profiles.parse_tbf_rate_mbit(json.dumps(tbf)) == 100
    fifo = [{"kind": "pfifo_fast", "root": True, "options": {}}]
    assert profiles.parse_tbf_rate_mbit(json.dumps(fifo)) == 0


def test_tbf_burst_holds_a_gso_packet_and_10ms():
    argv = profiles.tbf_argv("t1", 2, 10)
    assert argv[argv.index("dev") + 1] == "tap2"
    assert int(argv[argv.index("burst") + 1]) == profiles.MIN_BURST_BYTES
    argv = profiles.tbf_argv("t1", 0, 10000)
    assert int(argv[argv.index("burst") + 1]) == 10000 * 1000000 // 8 // 100


class FakeQemuMonitor:
    """A unix socket that talks like QEMU's human monitor (echo with escapes, prompt)."""

    def __init__(self, path, replies):
        self.replies = replies
        self.commands = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _addr = self.server.accept()
        with conn:
            conn.sendall(b"QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ")
            buf = b""
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    command = line.decode()
                    self.commands.append(command)
                    echo = "".join("%s\x1b[K\x1b[D" % command[: i + 1] for i in range(len(command)))
                    reply = self.replies.get(command.split()[0], "")
                    conn.sendall(("%s\r\n%s(qemu) " % (echo, reply)).encode())


def test_monitor_sets_and_reads_throttling(tmp_path):
    path = str(tmp_path / "client1.monitor")
    fake = FakeQemuMonitor(path, {"info": INFO_BLOCK_THROTTLED.replace("\n", "\r\n") + "\r\n"})
    mon = profiles.Monitor(path)
    try:
        assert profiles.parse_throttle(mon.command("info block swap")) == {
            "bps": 40000000,
            "iops": 80,
        }
        mon.command("block_set_io_throttle swap 1 0 0 2 0 0")
    finally:
        mon.close()
    fake.thread.join(5)
    assert fake.commands == ["info block swap", "block_set_io_throttle swap 1 0 0 2 0 0"]


def test_monitor_error_is_raised(tmp_path):
    path = str(tmp_path / "vm.monitor")
    FakeQemuMonitor(path, {"block_set_io_throttle": "Error: Device 'swap' not found\r\n"})
    mon = profiles.Monitor(path)
    with pytest.raises(LabError, match="Device 'swap' not found"):
        mon.command("block_set_io_throttle swap 0 0 0 0 0 0")
    mon.close()


def test_missing_monitor_names_the_fix(tmp_path):
    with pytest.raises(LabError, match="is the VM running"):
        profiles.Monitor(str(tmp_path / "none.monitor"))


class FakeLab:
    def __init__(self, monkeypatch, workdir):
        self.disk = {"client1": {"bps": 0, "iops": 0}, "server1": {"bps": 0, "iops": 0}}
        self.link = {0: 0, 1: 0}
        self.calls = []
        for name, index, disk in (("client1", 0, 2048), ("server1", 1, 0)):
            spec = {"name": name, "index": index, "swap_disk_mib": disk}
            with open(os.path.join(workdir, name + ".json"), "w") as handle:
                json.dump({"spec": spec}, handle)
        monkeypatch.setattr(profiles, "disk_throttle", lambda w, n: dict(self.disk[n]))
        monkeypatch.setattr(profiles, "link_rate_mbit", lambda lab, i: self.link[i])
        monkeypatch.setattr(profiles, "set_disk_throttle", self.set_disk)
        monkeypatch.setattr(profiles, "set_link_rate", self.set_link)

    def set_disk(self, workdir, name, bps, iops):
        self.calls.append(("disk", name, bps, iops))
        self.disk[name] = {"bps": bps, "iops": iops}

    def set_link(self, lab, index, rate):
        self.calls.append(("link", index, rate))
        self.link[index] = rate


@pytest.fixture
def fake_lab(monkeypatch, tmp_path):
    return FakeLab(monkeypatch, str(tmp_path))


def test_profile_applied_then_unchanged(monkeypatch, tmp_path, fake_lab):
    args = {"lab": "t1", "workdir": str(tmp_path), "disk_iops": 80, "disk_bps": 40000000}
    args["link_rate_mbit"] = 100
    failed, result = run_module(monkeypatch, lab_profile, args)
    assert not failed and result["changed"]
    # only client1 has a swap disk; both VMs get the link rate
    assert sorted(fake_lab.calls) == [
        ("disk", "client1", 40000000, 80),
        ("link", 0, 100),
        ("link", 1, 100),
    ]
    assert result["profile"]["server1"] == {"link_rate_mbit": 100}
    fake_lab.calls.clear()
    failed, result = run_module(monkeypatch, lab_profile, args)
    assert not failed and not result["changed"] and fake_lab.calls == []


def test_link_only_leaves_disks_alone(monkeypatch, tmp_path, fake_lab):
    args = {"lab": "t1", "workdir": str(tmp_path), "link_rate_mbit": 10}
    failed, result = run_module(monkeypatch, lab_profile, args, check_mode=True)
    assert not failed and result["changed"] and fake_lab.calls == []
    assert result["diff"]["after"]["client1"] == {"link_rate_mbit": 10}


def test_bad_values_and_missing_lab(monkeypatch, tmp_path, fake_lab):
    failed, result = run_module(
        monkeypatch, lab_profile, {"workdir": str(tmp_path), "link_rate_mbit": -1}
    )
    assert failed and "link_rate_mbit=-1" in result["msg"]
    failed, result = run_module(
        monkeypatch, lab_profile, {"workdir": str(tmp_path / "nolab"), "link_rate_mbit": 0}
    )
    assert failed and "create the lab first" in result["msg"]
