# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One benchmark run on the client: nswap-workload under a cgroup v2 memory.max, with a deadline.

Swaps the backend's area off and on again (so every run starts on an empty, freshly
activated area), checks that it is the only one on, drops the page cache, reads
pswpin/pswpout from /proc/vmstat before and after, and kills the workload's
whole process group at the deadline.  Prints one JSON line and exits 0 whatever
the run did (the line's "status" says: ok, failed or timeout); exit 2 only for
bad arguments.  Python 3 standard library only: it runs on the bare node, started as
``python3 nswap_bench_run.py`` (stock Debian has no ``python``, so no shebang is relied on).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

CGROUP_ROOT = "/sys/fs/cgroup"
KILL_GRACE_S = 10
CGROUP_DRAIN_S = 30


def vmstat():
    counters = {}
    with open("/proc/vmstat") as handle:
        for line in handle:
            key, value = line.split()
            if key in ("pswpin", "pswpout"):
                counters[key] = int(value)
    return counters


# /sys/block/<dev>/stat, Documentation/block/stat.rst: the fields kept, by position.
BLOCK_STAT_FIELDS = {
    "reads": 0,
    "read_sectors": 2,
    "read_ms": 3,
    "writes": 4,
    "write_sectors": 6,
    "write_ms": 7,
}


def block_stat(device, sysfs="/sys/class/block"):
    """The swap device's I/O counters (requests, 512-byte sectors, ms in flight), or None
    when the kernel keeps none for it: per request they give each backend's latency and
    request size, the "why" beside the wall times.  The keys are the report's
    SWAP_IO_FIELDS (plugins/plugin_utils/nswapbench/schema.py); this script runs on bare nodes and
    cannot import it."""
    name = os.path.basename(os.path.realpath(device))
    try:
        with open(os.path.join(sysfs, name, "stat")) as handle:
            values = handle.read().split()
    except OSError:
        return None
    return {key: int(values[index]) for key, index in BLOCK_STAT_FIELDS.items()}


def migrations(device, sysfs="/sys/class/block"):
    """nswap.ko's count of pages whose move to another server the device followed
    (/sys/block/<dev>/nswap/migrations), or None for a device without it."""
    name = os.path.basename(os.path.realpath(device))
    try:
        with open(os.path.join(sysfs, name, "nswap", "migrations")) as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return None


def active_swaps():
    with open("/proc/swaps") as handle:
        return [os.path.realpath(line.split()[0]) for line in handle.readlines()[1:]]


def reset_swap(device):
    """swapoff + swapon: frees nothing the last run left (its pages died with it) but
    restarts the kernel's slot allocation at the start of the area, as after a boot."""
    for argv in (["swapoff", device], ["swapon", device]):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(argv), proc.stderr.strip()))


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def drop_caches():
    os.sync()
    write("/proc/sys/vm/drop_caches", "3\n")


def make_cgroup(name, memory_max):
    """A fresh cgroup v2 directory with memory.max set; swap itself is not limited."""
    if not os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        raise RuntimeError(
            "cgroup v2 is not mounted at %s (boot with the unified hierarchy)" % CGROUP_ROOT
        )
    if "memory" not in open(os.path.join(CGROUP_ROOT, "cgroup.subtree_control")).read().split():
        write(os.path.join(CGROUP_ROOT, "cgroup.subtree_control"), "+memory\n")
    path = os.path.join(CGROUP_ROOT, name)
    remove_cgroup(path)
    os.mkdir(path)
    write(os.path.join(path, "memory.max"), "%d\n" % memory_max)
    if os.path.exists(os.path.join(path, "memory.swap.max")):
        write(os.path.join(path, "memory.swap.max"), "max\n")
    return path


def remove_cgroup(path):
    if not os.path.isdir(path):
        return
    deadline = time.time() + CGROUP_DRAIN_S
    while time.time() < deadline:
        with open(os.path.join(path, "cgroup.procs")) as handle:
            pids = [int(p) for p in handle.read().split()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    os.rmdir(path)


def kill_group(proc):
    """SIGTERM the workload's process group (it passes it on), SIGKILL after a grace."""
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload-bin", required=True)
    parser.add_argument("--workload", required=True, choices=["W1", "W2", "W3", "W4"])
    parser.add_argument("--procs", type=int, required=True)
    parser.add_argument("--memory-max-mib", type=int, required=True)
    parser.add_argument("--ratio", type=float, required=True)
    parser.add_argument("--deadline-s", type=int, required=True)
    parser.add_argument("--expect-swap", required=True, help="the one swap area that must be on")
    parser.add_argument("--file-dir", default="/var/tmp")
    parser.add_argument("--cgroup", default="nswap-bench")
    args = parser.parse_args(argv)
    if args.procs < 1 or args.memory_max_mib < 16 or args.deadline_s < 1 or args.ratio <= 0:
        parser.error("--procs >= 1, --memory-max-mib >= 16, --deadline-s >= 1 and --ratio > 0")
    return args


def run(args):
    result = {"status": "failed", "error": None, "wall_s": None, "pswpin": None, "pswpout": None}
    result.update({"bytes_verified": 0, "mismatches": None, "workload_result": None})
    result["swap_io"] = None
    result["migrations"] = None
    reset_swap(args.expect_swap)
    swaps = active_swaps()
    if swaps != [os.path.realpath(args.expect_swap)]:
        result["error"] = "swap areas on: %s; expected only %s" % (swaps, args.expect_swap)
        return result
    cgroup = make_cgroup(args.cgroup, args.memory_max_mib * 1024 * 1024)
    try:
        drop_caches()
        argv = [args.workload_bin, "--workload", args.workload, "--procs", str(args.procs)]
        argv += ["--ratio", repr(args.ratio), "--file-dir", args.file_dir]
        before = vmstat()
        io_before = block_stat(args.expect_swap)
        moved_before = migrations(args.expect_swap)
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: the deadline kills every child
            # This script has one thread, so preexec_fn is safe: the child joins the
            # cgroup before exec, so every byte the workload touches is charged there.
            preexec_fn=lambda: write(os.path.join(cgroup, "cgroup.procs"), "0\n"),  # noqa: PLW1509
        )
        try:
            out, err = proc.communicate(timeout=args.deadline_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            result["status"] = "timeout"
            result["error"] = "killed at the deadline of %d s" % args.deadline_s
        result["wall_s"] = round(time.monotonic() - started, 3)
        after = vmstat()
        io_after = block_stat(args.expect_swap)
        moved_after = migrations(args.expect_swap)
    finally:
        remove_cgroup(cgroup)
    result["pswpin"] = after["pswpin"] - before["pswpin"]
    result["pswpout"] = after["pswpout"] - before["pswpout"]
    if io_before and io_after:
        result["swap_io"] = {key: io_after[key] - io_before[key] for key in BLOCK_STAT_FIELDS}
    if moved_before is not None and moved_after is not None:
        result["migrations"] = moved_after - moved_before
    lines = [line for line in out.splitlines() if line.startswith("{")]
    workload = json.loads(lines[-1]) if lines else None
    result["workload_result"] = workload
    if workload:
        result["bytes_verified"] = workload.get("bytes_verified", 0)
        result["mismatches"] = workload.get("mismatched_pages", 0) + (
            (workload.get("file_writer") or {}).get("mismatched_blocks") or 0
        )
    if result["status"] != "timeout":
        if proc.returncode == 0 and workload and result["mismatches"] == 0:
            result["status"] = "ok"
        else:
            failures = "; ".join((workload or {}).get("failures") or [])
            result["error"] = "nswap-workload exit %d: %s" % (
                proc.returncode,
                failures or err.strip()[-800:] or "no output",
            )
    return result


def main(argv=None):
    args = parse_args(argv)
    try:
        result = run(args)
    except (OSError, RuntimeError, ValueError) as exc:
        result = {"status": "failed", "error": "%s: %s" % (type(exc).__name__, exc)}
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
