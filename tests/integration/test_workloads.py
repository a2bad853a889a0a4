"""nswap-workload (src/workloads) on small regions: no swapping needed.

The binary is built once per session (``make -C src/workloads``); set
NSWAP_WORKLOAD_BIN to test another build.  Memory-limit detection is tested
through the --meminfo/--cgroup-root/--proc-cgroup hooks and --dry-run, and the
verifier through its --inject-corruption self-test.
"""

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "workloads"
MIB = 1024 * 1024
PAGE = 4096
RUN_TIMEOUT = 60

RESULT_KEYS = [
    "workload",
    "procs",
    "size_bytes",
    "seconds",
    "write_seconds",
    "read_seconds",
    "bytes_verified",
    "mismatched_pages",
    "mismatched_bytes",
    "file_writer",
    "pswpin_delta",
    "pswpout_delta",
    "failed_procs",
    "memory_limit_bytes",
    "limit_source",
]


def _make(*targets):
    proc = subprocess.run(
        ["make", "-C", str(SRC), *targets],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def wl_bin():
    override = os.environ.get("NSWAP_WORKLOAD_BIN")
    if override:
        return Path(override)
    _make()
    return SRC / "bin" / "nswap-workload"


def run(binary, *args, expect=None):
    proc = subprocess.run(
        [str(binary), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if expect is not None:
        assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc


def result(proc):
    """The one JSON line on stdout."""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


# --- the workloads ----------------------------------------------------------------


@pytest.mark.parametrize("procs", [1, 4])
@pytest.mark.parametrize("workload", ["W1", "W2", "W3", "W4"])
def test_workload_verifies_every_byte(wl_bin, tmp_path, workload, procs):
    size = 16 * MIB
    proc = run(
        wl_bin,
        "--workload", workload,
        "--procs", procs,
        "--size", "16M",
        "--file-dir", tmp_path,
        "--file-size", "4M",
        "--seed", 7,
        expect=0,
    )  # fmt: skip
    res = result(proc)
    assert list(res)[: len(RESULT_KEYS)] == RESULT_KEYS
    assert res["workload"] == workload
    assert res["procs"] == procs
    assert res["size_bytes"] == size
    assert res["bytes_verified"] == size
    assert res["mismatched_pages"] == 0
    assert res["mismatched_bytes"] == 0
    assert res["failed_procs"] == 0
    assert res["failures"] == []
    assert res["seconds"] >= res["write_seconds"] >= 0
    assert res["limit_source"] in ("cgroup", "meminfo")
    assert res["memory_limit_bytes"] > 0
    for key in ("pswpin_delta", "pswpout_delta"):
        assert res[key] is None or res[key] >= 0
    if workload in ("W1", "W2"):
        assert res["file_writer"] is None
    else:
        fw = res["file_writer"]
        assert fw["verified"] is True
        assert fw["bytes"] == fw["bytes_verified"] == 4 * MIB
        assert fw["method"] in ("O_DIRECT", "fadvise")
        assert fw["error"] is None
        assert Path(fw["path"]).parent == tmp_path
    assert list(tmp_path.iterdir()) == []  # the file writer cleaned up
    order = "random" if workload in ("W2", "W4") else "sequential"
    assert f"{order} write" in proc.stderr


def test_size_rounds_up_to_pages_and_passes_multiply(wl_bin):
    res = result(run(wl_bin, "--workload", "W2", "--size", 10000, "--passes", 3, expect=0))
    assert res["size_bytes"] == 3 * PAGE
    assert res["bytes_verified"] == 3 * 3 * PAGE
    assert res["passes"] == 3


def test_uneven_split_covers_every_page(wl_bin):
    res = result(run(wl_bin, "--size", 5 * PAGE, "--procs", 4, "--dry-run", expect=0))
    assert res["proc_pages"] == [2, 1, 1, 1]
    res = result(run(wl_bin, "--workload", "W2", "--size", 5 * PAGE, "--procs", 4, expect=0))
    assert res["bytes_verified"] == 5 * PAGE


def test_keep_file_and_default_file_size(wl_bin, tmp_path):
    res = result(
        run(wl_bin, "--workload", "W3", "--size", "8M", "--file-dir", tmp_path, "--keep-file",
            "--fsync-every", "1M", expect=0)
    )  # fmt: skip
    fw = res["file_writer"]
    assert fw["size_bytes"] == fw["bytes"] == 4 * MIB  # half the region
    kept = Path(fw["path"])
    assert kept.stat().st_size == 4 * MIB


# --- the verifier can fail ----------------------------------------------------------


@pytest.mark.parametrize(("workload", "procs", "pages"), [("W1", 1, 3), ("W2", 4, 5), ("W3", 2, 1)])
def test_injected_corruption_is_detected(wl_bin, tmp_path, workload, procs, pages):
    proc = run(
        wl_bin,
        "--workload", workload,
        "--procs", procs,
        "--size", "8M",
        "--file-dir", tmp_path,
        "--file-size", "1M",
        "--inject-corruption", pages,
        expect=1,
    )  # fmt: skip
    res = result(proc)
    assert res["mismatched_pages"] == pages
    assert res["mismatched_bytes"] == pages  # one flipped byte per page
    assert res["bytes_verified"] == 8 * MIB
    assert res["failed_procs"] == 0
    assert "MISMATCH" in proc.stderr
    assert "expected 0x" in proc.stderr


def test_corruption_in_later_pass(wl_bin):
    res = result(run(wl_bin, "--size", "4M", "--passes", 2, "--inject-corruption", 2, expect=1))
    assert res["mismatched_pages"] == 2
    assert res["bytes_verified"] == 2 * 4 * MIB


# --- memory limit (test hooks) and --ratio ------------------------------------------


def _fixture(tmp_path, memtotal_kb=1048576, cgroup_line="0::/test.slice/job.scope", limits=None):
    """meminfo, /proc/self/cgroup and a cgroup tree under tmp_path; limits: {rel_dir: text}."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal:       {memtotal_kb} kB\nMemFree:        1000 kB\n")
    self_cgroup = tmp_path / "self_cgroup"
    self_cgroup.write_text(cgroup_line + "\n")
    root = tmp_path / "cgroup"
    for rel, text in (limits or {}).items():
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        name = "memory.limit_in_bytes" if rel.startswith("memory") else "memory.max"
        (d / name).write_text(text + "\n")
    root.mkdir(exist_ok=True)
    return [
        "--meminfo", meminfo, "--cgroup-root", root, "--proc-cgroup", self_cgroup,
    ]  # fmt: skip


def dry(wl_bin, hooks, *args):
    return result(run(wl_bin, "--dry-run", *hooks, *args, expect=0))


def test_cgroup_limit_of_own_cgroup(wl_bin, tmp_path):
    hooks = _fixture(tmp_path, limits={"test.slice/job.scope": "268435456", "test.slice": "max"})
    res = dry(wl_bin, hooks, "--ratio", "1.5", "--procs", 3)
    assert res["limit_source"] == "cgroup"
    assert res["memory_limit_bytes"] == 256 * MIB
    assert res["size_bytes"] == 384 * MIB
    assert res["proc_pages"] == [384 * MIB // PAGE // 3] * 3
    assert res["cgroup_limit_file"].endswith("test.slice/job.scope/memory.max")


def test_cgroup_limit_of_ancestor(wl_bin, tmp_path):
    hooks = _fixture(tmp_path, limits={"test.slice/job.scope": "max", "test.slice": "134217728"})
    res = dry(wl_bin, hooks)  # default --ratio 1.5
    assert res["limit_source"] == "cgroup"
    assert res["memory_limit_bytes"] == 128 * MIB
    assert res["size_bytes"] == 192 * MIB


def test_cgroup_unlimited_falls_back_to_memtotal(wl_bin, tmp_path):
    hooks = _fixture(tmp_path, limits={"test.slice/job.scope": "max", "test.slice": "max"})
    res = dry(wl_bin, hooks, "--ratio", "2")
    assert res["limit_source"] == "meminfo"
    assert res["cgroup_limit_bytes"] is None
    assert res["memory_limit_bytes"] == 1024 * MIB
    assert res["size_bytes"] == 2048 * MIB


def test_cgroup_above_memtotal_uses_memtotal(wl_bin, tmp_path):
    hooks = _fixture(tmp_path, memtotal_kb=512 * 1024, limits={"test.slice": str(4 << 30)})
    res = dry(wl_bin, hooks, "--ratio", "1")
    assert res["limit_source"] == "meminfo"
    assert res["memory_limit_bytes"] == 512 * MIB
    assert res["cgroup_limit_bytes"] == 4 << 30


def test_no_cgroup_files_uses_memtotal(wl_bin, tmp_path):
    hooks = _fixture(tmp_path, cgroup_line="0::/", memtotal_kb=2 * 1024 * 1024)
    res = dry(wl_bin, hooks)
    assert res["limit_source"] == "meminfo"
    assert res["memory_limit_bytes"] == 2048 * MIB
    assert res["size_bytes"] == 3072 * MIB


def test_cgroup_v1_limit(wl_bin, tmp_path):
    hooks = _fixture(
        tmp_path,
        cgroup_line="4:memory:/docker/abc\n0::/",
        limits={"memory/docker/abc": "104857600", "memory": "9223372036854771712"},
    )
    res = dry(wl_bin, hooks, "--ratio", "0.5")
    assert res["limit_source"] == "cgroup"
    assert res["memory_limit_bytes"] == 100 * MIB
    assert res["size_bytes"] == 50 * MIB


def test_no_limit_at_all(wl_bin, tmp_path):
    missing = tmp_path / "missing"
    hooks = ["--meminfo", missing, "--cgroup-root", missing, "--proc-cgroup", missing]
    proc = run(wl_bin, "--dry-run", *hooks, expect=2)
    assert "--ratio" in proc.stderr and "--size" in proc.stderr
    res = dry(wl_bin, hooks, "--size", "4M")
    assert res["memory_limit_bytes"] is None and res["limit_source"] is None
    assert res["size_bytes"] == 4 * MIB


def test_dry_run_file_plan(wl_bin, tmp_path):
    res = dry(wl_bin, [], "--workload", "W4", "--size", "16M", "--file-dir", tmp_path)
    assert res["file_writer"] == {
        "dir": str(tmp_path),
        "size_bytes": 8 * MIB,
        "fsync_every_bytes": 64 * MIB,
    }
    assert list(tmp_path.iterdir()) == []


# --- usage errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--procs", "0"], "--procs '0': use an integer from 1 to 64"),
        (["--procs", "65"], "--procs '65'"),
        (["--procs", "two"], "--procs 'two'"),
        (["--workload", "W5"], "--workload 'W5': use W1, W2, W3 or W4"),
        (["--size", "12X"], "--size '12X'"),
        (["--size", "0"], "--size '0'"),
        (["--size", "-4M"], "--size '-4M'"),
        (["--ratio", "0"], "--ratio '0'"),
        (["--ratio", "abc"], "--ratio 'abc'"),
        (["--size", "4M", "--ratio", "1"], "--size and --ratio"),
        (["--seed", "x"], "--seed 'x'"),
        (["--passes", "0"], "--passes '0'"),
        (["--file-size", "100", "--workload", "W3"], "--file-size '100'"),
        (["--fsync-every", "lots"], "--fsync-every 'lots'"),
        (["--size", "4K", "--procs", "2"], "--procs 2"),
        (["--size", "4M", "--inject-corruption", "1025"], "--inject-corruption '1025'"),
        (["--inject-corruption", "-1"], "--inject-corruption '-1'"),
        (["--bogus"], "unknown option '--bogus'"),
        (["-x"], "unknown option '-x'"),
        (["--size"], "'--size' needs a value"),
        (["stray"], "unexpected argument 'stray'"),
    ],
)
def test_usage_errors(wl_bin, args, needle):
    proc = run(wl_bin, *args, expect=2)
    assert needle in proc.stderr
    assert proc.stdout == ""


def test_file_dir_errors(wl_bin, tmp_path):
    proc = run(wl_bin, "--workload", "W3", "--size", "4M", "--file-dir", tmp_path / "no", expect=2)
    assert "--file-dir" in proc.stderr
    not_dir = tmp_path / "plain"
    not_dir.write_text("")
    proc = run(wl_bin, "--workload", "W3", "--size", "4M", "--file-dir", not_dir, expect=2)
    assert "not a directory" in proc.stderr
    proc = run(
        wl_bin, "--workload", "W4", "--size", "4M", "--file-dir", tmp_path,
        "--file-size", "1024T", expect=2,
    )  # fmt: skip
    assert "--file-size" in proc.stderr and "free" in proc.stderr


def test_help(wl_bin):
    proc = run(wl_bin, "--help", expect=0)
    for word in ("W1", "W2", "W3", "W4", "--procs", "--ratio", "--inject-corruption"):
        assert word in proc.stdout


# --- static build -------------------------------------------------------------------


def _has_interpreter(path):
    """True if the ELF64 file has a PT_INTERP program header (is dynamically linked)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "not an ELF64 file"
    endian = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    types = [struct.unpack_from(endian + "I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 in types  # PT_INTERP


def test_static_binary_runs(wl_bin):
    if os.environ.get("NSWAP_WORKLOAD_BIN"):
        pytest.skip("testing another build")
    _make("static")
    static = SRC / "bin" / "nswap-workload-static"
    assert not _has_interpreter(static)
    res = result(run(static, "--size", "4M", "--workload", "W1", expect=0))
    assert res["bytes_verified"] == 4 * MIB
    assert res["mismatched_pages"] == 0
