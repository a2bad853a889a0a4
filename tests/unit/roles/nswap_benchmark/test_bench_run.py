"""The benchmark's run wrapper (roles/nswap_benchmark/files/nswap_bench_run.py) with its
system parts (swaps, cgroup, vmstat) replaced and a fake workload program."""

import importlib.util
import json
import os
import stat
import time

import pytest

from tests import REPO

SCRIPT = os.path.join(REPO, "roles", "nswap_benchmark", "files", "nswap_bench_run.py")


@pytest.fixture
def runner(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("nswap_bench_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    counters = iter([{"pswpin": 10, "pswpout": 100}, {"pswpin": 60, "pswpout": 400}])
    monkeypatch.setattr(module, "vmstat", lambda: next(counters))
    monkeypatch.setattr(module, "active_swaps", lambda: ["/dev/zram0"])
    stats = iter(
        [
            dict(reads=5, read_sectors=40, read_ms=2, writes=7, write_sectors=80, write_ms=3),
            dict(
                reads=55, read_sectors=440, read_ms=12, writes=107, write_sectors=2480, write_ms=33
            ),
        ]
    )
    monkeypatch.setattr(module, "block_stat", lambda device: next(stats))
    monkeypatch.setattr(module, "drop_caches", lambda: None)
    monkeypatch.setattr(module, "reset_swap", lambda device: None)
    cgroup = tmp_path / "cg"
    monkeypatch.setattr(module, "make_cgroup", lambda name, limit: str(cgroup.mkdir() or cgroup))
    monkeypatch.setattr(module, "remove_cgroup", lambda path: None)
    monkeypatch.setattr(module, "KILL_GRACE_S", 1)
    return module


def fake_workload(tmp_path, body):
    path = tmp_path / "fake-workload"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def args(runner, workload_bin, deadline=30, swap="/dev/zram0"):
    return runner.parse_args(
        [
            "--workload-bin=" + workload_bin,
            "--workload=W1",
            "--procs=1",
            "--memory-max-mib=64",
            "--ratio=1.5",
            "--deadline-s=%d" % deadline,
            "--expect-swap=" + swap,
        ]
    )


def test_ok_run_reports_deltas_and_verification(runner, tmp_path):
    line = {"bytes_verified": 4096, "mismatched_pages": 0, "file_writer": None, "failures": []}
    prog = fake_workload(tmp_path, "echo progress >&2; echo '%s'" % json.dumps(line))
    result = runner.run(args(runner, prog))
    assert result["status"] == "ok", result
    assert (result["pswpin"], result["pswpout"]) == (50, 300)
    assert result["swap_io"] == dict(
        reads=50, read_sectors=400, read_ms=10, writes=100, write_sectors=2400, write_ms=30
    )
    assert result["bytes_verified"] == 4096 and result["mismatches"] == 0
    assert result["wall_s"] >= 0 and result["error"] is None


def test_mismatch_fails_and_counts_file_blocks(runner, tmp_path):
    line = {"bytes_verified": 8192, "mismatched_pages": 2, "failures": []}
    line["file_writer"] = {"mismatched_blocks": 1}
    prog = fake_workload(tmp_path, "echo '%s'; exit 1" % json.dumps(line))
    result = runner.run(args(runner, prog))
    assert result["status"] == "failed" and result["mismatches"] == 3
    assert "exit 1" in result["error"]


def test_deadline_kills_the_process_group(runner, tmp_path):
    marker = tmp_path / "child.pid"
    prog = fake_workload(tmp_path, "sleep 60 & echo $! > %s; wait" % marker)
    started = time.monotonic()
    result = runner.run(args(runner, prog, deadline=1))
    assert time.monotonic() - started < 20
    assert result["status"] == "timeout" and "deadline of 1 s" in result["error"]
    child = int(marker.read_text())
    time.sleep(0.5)
    assert not os.path.exists("/proc/%d" % child) or open("/proc/%d/stat" % child).read().split(
        ") "
    )[1].startswith("Z")


def test_wrong_swap_area_is_refused_before_running(runner, tmp_path):
    prog = fake_workload(tmp_path, "touch %s/ran" % tmp_path)
    result = runner.run(args(runner, prog, swap="/dev/nbd0"))
    assert result["status"] == "failed" and "expected only /dev/nbd0" in result["error"]
    assert not (tmp_path / "ran").exists()


def test_bad_arguments_exit_2(runner, capsys):
    with pytest.raises(SystemExit) as info:
        runner.parse_args(["--workload-bin=x", "--workload=W1", "--procs=0"])
    assert info.value.code == 2


def test_block_stat_reads_the_swap_devices_counters(tmp_path):
    """/sys/block/<dev>/stat of the device the swap path resolves to (dm-0 for a
    /dev/mapper link); None where the kernel keeps no counters for it."""
    spec = importlib.util.spec_from_file_location("nswap_bench_run_io", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sysfs = tmp_path / "class-block"
    (sysfs / "dm-0").mkdir(parents=True)
    (sysfs / "dm-0" / "stat").write_text("  120 3 960 41 250 9 8000 77 0 90 118 0 0 0 0 0 0\n")
    (tmp_path / "dm-0").write_text("")
    link = tmp_path / "nswapbench-swap"
    link.symlink_to(tmp_path / "dm-0")
    assert module.block_stat(str(link), sysfs=str(sysfs)) == dict(
        reads=120, read_sectors=960, read_ms=41, writes=250, write_sectors=8000, write_ms=77
    )
    assert module.block_stat(str(tmp_path / "zram9"), sysfs=str(sysfs)) is None


def test_migrations_are_the_nswap_devices_counter_delta(runner, tmp_path, monkeypatch):
    """/sys/block/<dev>/nswap/migrations before and after: the pages whose move the client
    followed during the run; None for a device that has no such counter (not nswap)."""
    moved = iter([40, 1040])
    monkeypatch.setattr(runner, "migrations", lambda device: next(moved))
    line = {"bytes_verified": 4096, "mismatched_pages": 0, "file_writer": None, "failures": []}
    result = runner.run(args(runner, fake_workload(tmp_path, "echo '%s'" % json.dumps(line))))
    assert result["status"] == "ok" and result["migrations"] == 1000
    sysfs = tmp_path / "class-block"
    (sysfs / "nswapbench" / "nswap").mkdir(parents=True)
    (sysfs / "nswapbench" / "nswap" / "migrations").write_text("77\n")
    (sysfs / "zram0").mkdir()
    spec = importlib.util.spec_from_file_location("nswap_bench_run_moves", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.migrations("/dev/nswapbench", sysfs=str(sysfs)) == 77
    assert module.migrations("/dev/zram0", sysfs=str(sysfs)) is None
