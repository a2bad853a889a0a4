#!/usr/bin/env python3
"""nswap data-path micro-benchmark: GETPAGE latency and PUTPAGE throughput against the same
link's raw TCP, printed as ratios.  A benchmark, not a test: a missed target is a finding, and
the exit status is 0 whenever every targeted metric produced a number.

One run measures, on the link nswap.ko really uses (the mini VM <-> network namespace tap,
qemu TCG), from inside the VM to servers in the namespace, in R interleaved rounds so that
each ratio compares numbers taken seconds apart (the host is shared; see README):

  a. raw TCP: netbench 4 KiB ping-pong (TCP_NODELAY), a GETPAGE-shaped 56 B -> 4152 B
     ping-pong, and streams of 256 KiB writes (the link's capacity) and 4 KiB writes;
  b. protocol: nswap-bench against nswapd: GETPAGE p50/p99 at depth 1, PUTPAGE pages/s
     pipelined (1 connection, 32 in flight);
  c. kernel: /dev/nswap0 (nswap.ko) against nswapd: blkbench O_DIRECT 4 KiB reads at queue
     depth 1 of written, verified blocks (p50/p99), sequential O_DIRECT writes of 128 KiB
     (queue depth 1 and 4) and 1 MiB (and 4 KiB once), and the driver's own latency_hist;
and on the host, in the same namespace's loopback:
  d. nswapd pinned to CPU 0 (taskset), nswap-bench (4 connections) on CPU 1: PUT and GET
     pages/s, and nswapd's CPU time per page operation;
and once:
  e. the slot map's bytes per slot, from the source (element type) and measured in the VM
     (/proc/vmallocinfo and VmallocUsed around powering on a 64 GiB device, 16M slots).

Run as root:  benchmarks/datapath.py [--quick] [--output FILE] [--rounds N] [--kmod KO]
See benchmarks/README.md for what each number means.
"""

import argparse
import contextlib
import datetime
import glob
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, "build", "bench")
NETBENCH_SRC = os.path.join(REPO, "src", "netbench")
KMOD_SRC = os.path.join(REPO, "src", "kmod")
INCLUDE_SRC = os.path.join(REPO, "src", "include")
SLOTMAP_H = os.path.join(KMOD_SRC, "nswap_slotmap.h")
SLOTMAP_C = os.path.join(KMOD_SRC, "nswap_slotmap.c")

NETBENCH_PORT = 7500
NSWAPD_PORT = 7405
NATIVE_NSWAPD_PORT = 7406
NATIVE_NETBENCH_PORT = 7501
HOST_CIDR = "10.99.0.1/24"
GUEST_CIDR = "10.99.0.2/24"
CFG = "/sys/kernel/config/nswap/nswap0"
SLOTMAP_DEVICE_SIZE = 64 << 30  # 16M slots
VM_MEMORY_MIB = 640  # room for a 128 MiB slot map next to the initramfs
SERVER_START_S = 20
NSWAP_HDR = 56  # GETPAGE request bytes; the reply is NSWAP_HDR + 4096
PAGE = 4096
USER_HZ = 100  # /proc/stat's tick (fixed in the kernel ABI)
STREAM_BIG_WRITE = 256 << 10  # write size of the link-capacity stream

TARGET_GET_P50_RATIO = 1.5
TARGET_PUT_STREAM_RATIO = 0.70
TARGET_NATIVE_PAGES_S = 200_000
TARGET_SLOT_BYTES = 8.0

# Sizes per profile.  Counts bound every loop; each tool also gets a time limit (seconds) and
# a busybox `timeout` above it; the whole VM run gets what is left of budget_s.
PROFILES = {
    "quick": {
        "rounds": 3,
        "pingpong_count": 2000,
        "stream_bytes": 32 << 20,
        "bench_pages": 4096,
        "bench_samples": 2000,
        "blk_write4k_count": 2048,
        "blk_write128k_count": 256,
        "blk_write1m_count": 32,
        "blk_read_count": 1000,
        "native_rounds": 3,
        "native_pages": 32768,
        "native_samples": 1000,
        "native_pingpong_count": 5000,
        "native_stream_bytes": 256 << 20,
        "tool_limit_s": 15,
        "budget_s": 170,
    },
    "full": {
        "rounds": 5,
        "pingpong_count": 4000,
        "stream_bytes": 64 << 20,
        "bench_pages": 8192,
        "bench_samples": 4000,
        "blk_write4k_count": 4096,
        "blk_write128k_count": 512,
        "blk_write1m_count": 64,
        "blk_read_count": 2000,
        "native_rounds": 5,
        "native_pages": 131072,
        "native_samples": 5000,
        "native_pingpong_count": 20000,
        "native_stream_bytes": 1 << 30,
        "tool_limit_s": 30,
        "budget_s": 560,
    },
}


class BenchError(Exception):
    """The benchmark could not run (build, setup); the message says why."""


def log(message):
    print(f"[datapath {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- setup -------------------------------------------------------------------------------------


def import_lab():
    """The test harness (repo root on sys.path: this file also runs as a script)."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from harness import kbuild, kernel, minivm, nswapd  # noqa: PLC0415

    return kbuild, kernel, minivm, nswapd


def sh(argv, timeout=600, cwd=REPO):
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise BenchError(
            f"command failed (exit {proc.returncode}): {' '.join(argv)}\n"
            + (proc.stdout[-2000:] + proc.stderr[-3000:]).strip()
        )
    return proc.stdout


def build_tools():
    """netbench, blkbench, nswap-bench (static, for the VM) and nswapd, nswap-bench (host), all
    into build/bench from the current sources; src/nswapd's own build outputs stay untouched."""
    sh(["make", "-s", "-C", NETBENCH_SRC, f"O={BUILD}", "all", "static", "nswapd"])
    names = (
        "netbench",
        "netbench-static",
        "blkbench-static",
        "nswap-bench-static",
        "nswap-bench",
        "nswapd",
    )
    tools = {name: os.path.join(BUILD, name) for name in names}
    for path in tools.values():
        if not os.access(path, os.X_OK):
            raise BenchError(f"{path} was not built")
    return tools


def build_kmod(kbuild, kit):
    """nswap.ko for ``kit`` from a private copy of src/kmod (a colleague may be editing it),
    into build/bench/kmod; rebuilt only when the sources or the kernel changed.
    Returns (ko, source hash)."""
    kdir = os.path.join(BUILD, "kmod")
    (ko,), source_hash = kbuild.build_module_cached(kit, KMOD_SRC, kdir, [INCLUDE_SRC])
    log(f"nswap.ko: {os.path.relpath(ko, REPO)} (sources {source_hash})")
    return ko, source_hash


# --- servers in the namespace ------------------------------------------------------------------


class Server:
    """A raw TCP server process inside the namespace (nswapd is harness.nswapd's);
    stop() sends TERM, then KILL."""

    def __init__(self, tapnet, argv, port, what):
        self.what = what
        self.tapnet = tapnet
        self.port = port
        # `ip netns exec` and `taskset` exec the server, so proc.pid is the server itself.
        self.proc = subprocess.Popen(
            tapnet.command(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._wait_listening()

    def _listening(self):
        out = subprocess.run(
            self.tapnet.command(["ss", "-Hltn", f"sport = :{self.port}"]),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        return bool(out.strip())

    def _wait_listening(self):
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.what} exited at start: {self.proc.stdout.read()[-2000:]}")
            if self._listening():
                return
            time.sleep(0.1)
        self.stop()
        raise BenchError(f"{self.what} did not listen on port {self.port} in {SERVER_START_S} s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.stdout.read() if self.proc.stdout else ""


def cpu_seconds(pid):
    """CPU time of process ``pid`` (all its threads), from schedstat (ns) where the kernel has
    it, else utime + stime (clock ticks); None if unreadable."""
    total = 0
    try:
        for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            with open(path) as handle:
                total += int(handle.read().split()[0])
        if total:
            return total / 1e9
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_comm(pid):
    with contextlib.suppress(OSError), open(f"/proc/{pid}/comm") as handle:
        return handle.read().strip()
    return None


@contextlib.contextmanager
def servers(tapnet, specs):
    """Start [(argv, port, what)] in order; stop them all on exit (exceptions included)."""
    started = []
    try:
        for argv, port, what in specs:
            started.append(Server(tapnet, argv, port, what))
        yield started
    finally:
        for server in reversed(started):
            server.stop()


# --- parsing -----------------------------------------------------------------------------------

_SECTION_RE = re.compile(r"^BEGIN (\S+)\n(.*?)^END \1 rc=(\d+)$", re.S | re.M)
_BENCH_PUT_RE = re.compile(r"^put: (\d+) pages/s \(([\d.]+) MiB/s, ([\d.]+) s\)", re.M)
_BENCH_GET_RE = re.compile(r"^get: (\d+) pages/s \(([\d.]+) MiB/s, ([\d.]+) s, ([^)]*)\)", re.M)
_BENCH_LAT_RE = re.compile(
    r"^get latency \(depth 1, (\d+) samples\): p50 ([\d.]+) us\s+p99 ([\d.]+) us\s+"
    r"p99\.9 ([\d.]+) us\s+mean ([\d.]+) us\s+max ([\d.]+) us",
    re.M,
)


def parse_sections(output):
    """[(name, round or None, rc, text)] from the guest's BEGIN/END-framed sections;
    a name ``x@3`` is section x of round 3."""
    sections = []
    for match in _SECTION_RE.finditer(output):
        name, _at, rnd = match.group(1).partition("@")
        sections.append((name, int(rnd) if rnd else None, int(match.group(3)), match.group(2)))
    return sections


def guest_cpu(text):
    """(fraction of the guest's CPU time not idle, busy CPU seconds) between the section's two
    CPUSTAT lines (/proc/stat's cpu line: USER_HZ ticks), or None."""
    stats = re.findall(r"^CPUSTAT cpu\s+([\d ]+)$", text, re.M)
    if len(stats) != 2:
        return None
    before, after = ([int(x) for x in line.split()[:8]] for line in stats)
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta)
    if total <= 0:
        return None
    busy = total - delta[3] - delta[4]  # less idle and iowait
    return round(busy / total, 3), busy / USER_HZ


def json_line(text):
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads(line)
    return None


def parse_nswap_bench(text):
    put, get_, lat = (r.search(text) for r in (_BENCH_PUT_RE, _BENCH_GET_RE, _BENCH_LAT_RE))
    if not (put and get_ and lat):
        return None
    return {
        "put_pages_per_s": float(put.group(1)),
        "put_mib_per_s": float(put.group(2)),
        "put_s": float(put.group(3)),
        "get_pages_per_s": float(get_.group(1)),
        "get_mib_per_s": float(get_.group(2)),
        "get_s": float(get_.group(3)),
        "get_verdict": get_.group(4),
        "latency_samples": int(lat.group(1)),
        "get_p50_us": float(lat.group(2)),
        "get_p99_us": float(lat.group(3)),
        "get_p999_us": float(lat.group(4)),
        "get_mean_us": float(lat.group(5)),
        "get_max_us": float(lat.group(6)),
        "ok": "nswap-bench: ok" in text,
    }


def parse_hist(text):
    """[(lower_us, count)] from latency_hist text."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            rows.append((int(parts[0]), int(parts[1])))
    return rows


def hist_add(total, after, before):
    """total + (after - before), bucket by bucket; total may be empty."""
    if not after or len(after) != len(before):
        return total
    delta = [(lo, a - b) for (lo, a), (_lo, b) in zip(after, before, strict=True)]
    if not total:
        return delta
    return [(lo, t + d) for (lo, t), (_lo, d) in zip(total, delta, strict=True)]


def hist_percentile(rows, fraction):
    """[lower, upper) µs of the bucket holding the given fraction; None if empty."""
    total = sum(count for _lower, count in rows)
    if total == 0:
        return None
    seen = 0
    for index, (lower, count) in enumerate(rows):
        seen += count
        if seen >= fraction * total:
            upper = rows[index + 1][0] if index + 1 < len(rows) else None
            return [lower, upper]
    return [rows[-1][0], None]


def slot_bytes_from_source():
    """(bytes per slot, how) from the slot map struct's per-slot array and its allocation."""
    sizes = {"atomic64_t": 8, "u64": 8, "__u64": 8, "atomic_long_t": 8, "unsigned long": 8}
    sizes.update({"u32": 4, "atomic_t": 4, "__u32": 4, "u16": 2, "u8": 1})
    with open(SLOTMAP_H) as handle:
        header = handle.read()
    struct = re.search(r"struct nswap_slotmap\s*\{(.*?)\};", header, re.S)
    if not struct:
        return None, "struct nswap_slotmap not found in nswap_slotmap.h"
    pointers = re.findall(r"^\s*([\w ]+?)\s*\*\s*(\w+)\s*;", struct.group(1), re.M)
    if not pointers:
        return None, "no per-slot array in struct nswap_slotmap"
    alloc = ""
    with contextlib.suppress(OSError), open(SLOTMAP_C) as handle:
        match = re.search(
            r"\b(kv[cm]alloc\w*|vzalloc|vmalloc\w*|kcalloc)\s*\(([^;]*)\);", handle.read()
        )
        alloc = match.group(0) if match else ""
    total = 0
    described = []
    for ctype, name in pointers:
        size = sizes.get(ctype.strip())
        if size is None:
            return None, f"unknown element type {ctype!r} of {name}"
        total += size
        described.append(f"{ctype.strip()} *{name} ({size} B)")
    return float(total), "; ".join(described) + (f"; allocated by {alloc}" if alloc else "")


def parse_slotmap(text, slots):
    values = {k: int(v) for k, v in re.findall(r"^(\w+)=(\d+)$", text, re.M)}
    result = {"slots": slots, "device_bytes": slots * PAGE}
    if "vmalloc_used_kb_before" in values and "vmalloc_used_kb_after" in values:
        delta = (values["vmalloc_used_kb_after"] - values["vmalloc_used_kb_before"]) << 10
        result["vmalloc_used_delta_bytes"] = delta
        result["vmalloc_used_bytes_per_slot"] = round(delta / slots, 4)
    if "memfree_kb_before" in values and "memfree_kb_after" in values:
        result["memfree_delta_bytes"] = (
            values["memfree_kb_before"] - values["memfree_kb_after"]
        ) << 10
    areas = re.findall(r"^VMAREA\s+\S+\s+(\d+)\s+(.*)$", text, re.M)
    result["vmallocinfo_nswap_areas"] = [f"{size} {rest.strip()}" for size, rest in areas]
    sizes = sorted((int(size) for size, rest in areas if "nswap_slotmap" in rest), reverse=True)
    if sizes:
        # vmallocinfo sizes include one guard page per area.  The largest area is the map
        # itself; vmalloc allocates its page-pointer array (8 B per page, here > 1 page) with
        # the same caller, so it shows up as a second, smaller nswap_slotmap_init area.
        result["slotmap_data_bytes"] = sizes[0] - PAGE
        result["slotmap_data_bytes_per_slot"] = round((sizes[0] - PAGE) / slots, 4)
        result["slotmap_all_areas_bytes"] = sum(sizes)
        result["slotmap_all_areas_bytes_per_slot"] = round(sum(sizes) / slots, 4)
    return result


# --- the guest script --------------------------------------------------------------------------


def guest_script(p, server_ip, guest_deadline_s):
    limit = p["tool_limit_s"]
    hard = limit + 15  # busybox timeout around each tool, above its own --time-limit
    slots = SLOTMAP_DEVICE_SIZE // PAGE
    nb = f"timeout {hard} /bin/netbench client"
    blk = f"timeout {hard} /bin/blkbench"
    return rf"""
set -u
cfg={CFG}
S={server_ip}
D=/dev/nswap0
sec() {{
    name=$1; shift
    echo "BEGIN $name"
    c0=$(head -n 1 /proc/stat)
    "$@" 2>&1
    rc=$?
    echo "CPUSTAT $c0"
    echo "CPUSTAT $(head -n 1 /proc/stat)"
    echo "END $name rc=$rc"
}}
facts() {{
    echo "kernel=$(uname -r)"
    echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
    echo "nproc=$(nproc)"
    grep -E '^(MemTotal|MemFree):' /proc/meminfo
}}
up() {{
    mkdir $cfg && echo "$1" > $cfg/size && echo "add $S:{NSWAPD_PORT}" > $cfg/servers \
        && echo 1 > $cfg/power || return 1
    n=0; while ! grep -q ' up' $cfg/servers && [ $n -lt 150 ]; do sleep 0.1; n=$((n+1)); done
    cat $cfg/servers
    grep -q ' up' $cfg/servers
}}
down() {{ echo 0 > $cfg/power; rmdir $cfg; }}
hist() {{ cat /sys/block/nswap0/nswap/latency_hist; }}
counters() {{
    for f in /sys/block/nswap0/nswap/*; do
        [ "$(basename $f)" = latency_hist ] || echo "$(basename $f)=$(cat $f)"
    done
}}
sec guest_facts facts
# As modprobe's soft dependency would on a real system: the fastest crc32c first (libcrc32c
# binds the highest-priority driver when it loads).
modprobe crc32c-intel 2>/dev/null
modprobe crc32c_generic 2>/dev/null
crc_drivers() {{
    awk '/^name/ {{n=$3}} /^driver/ {{d=$3}} /^priority/ && n=="crc32c" {{print d, $3}}' \
        /proc/crypto
}}
sec crc32c_drivers crc_drivers
slotmap() {{
    echo "vmalloc_used_kb_before=$(awk '/^VmallocUsed:/ {{print $2}}' /proc/meminfo)"
    echo "memfree_kb_before=$(awk '/^MemFree:/ {{print $2}}' /proc/meminfo)"
    up {SLOTMAP_DEVICE_SIZE} || {{ echo "64G device did not come up"; down; return 1; }}
    echo "vmalloc_used_kb_after=$(awk '/^VmallocUsed:/ {{print $2}}' /proc/meminfo)"
    echo "memfree_kb_after=$(awk '/^MemFree:/ {{print $2}}' /proc/meminfo)"
    grep nswap /proc/vmallocinfo | sed 's/^/VMAREA /'
    down
}}
dev=0
if modprobe nswap; then
    sec slotmap slotmap
    if up 1G; then
        dev=1
        # The blocks the reads of every round come back to, written (and timed) once.
        sec blk_write_4k {blk} write $D --bs 4096 --count {p["blk_write4k_count"]} \
            --offset 0 --seed 7 --time-limit {limit}
    fi
fi
[ $dev = 1 ] || echo "nswap device did not come up"
now() {{ cut -d. -f1 /proc/uptime; }}
t0=$(now)
r=1
while [ $r -le {p["rounds"]} ]; do
    sec raw_pingpong_4k@$r {nb} pingpong $S:{NETBENCH_PORT} --count {p["pingpong_count"]} \
        --size 4096 --time-limit {limit}
    sec raw_pingpong_getshape@$r {nb} pingpong $S:{NETBENCH_PORT} \
        --count {p["pingpong_count"]} --req-size {NSWAP_HDR} --size {NSWAP_HDR + PAGE} \
        --time-limit {limit}
    sec raw_stream@$r {nb} stream $S:{NETBENCH_PORT} --bytes {p["stream_bytes"]} --size 4096 \
        --time-limit {limit}
    sec raw_stream_big@$r {nb} stream $S:{NETBENCH_PORT} --bytes {4 * p["stream_bytes"]} \
        --size {STREAM_BIG_WRITE} --time-limit {limit}
    sec proto_bench@$r timeout {hard * 2} /bin/nswap-bench -H $S -p {NSWAPD_PORT} -c 1 \
        -n {p["bench_pages"]} -d 32 -l {p["bench_samples"]}
    if [ $dev = 1 ]; then
        sec hist_pre_read@$r hist
        sec blk_read_4k@$r {blk} read $D --bs 4096 --count {p["blk_read_count"]} --offset 0 \
            --span {p["blk_write4k_count"] * PAGE} --random --seed 7 \
            --time-limit {limit}
        sec hist_post_read@$r hist
        sec blk_write_128k@$r {blk} write $D --bs 128K --count {p["blk_write128k_count"]} \
            --offset 256M --seed $r --time-limit {limit}
        sec blk_write_1m@$r {blk} write $D --bs 1M --count {p["blk_write1m_count"]} \
            --offset 512M --seed $r --time-limit {limit}
        sec blk_write_128k_qd4@$r {blk} write $D --bs 128K \
            --count {p["blk_write128k_count"]} --jobs 4 --offset 768M --seed $r \
            --time-limit {limit}
        sec hist_post_write@$r hist
    fi
    # No round is started that would not end before the deadline (guest uptime).
    t=$(now)
    if [ $((t + (t - t0) / r)) -gt {guest_deadline_s} ]; then
        echo "ROUNDS_CUT after $r: guest uptime $t s, deadline {guest_deadline_s} s"
        break
    fi
    r=$((r + 1))
done
if [ $dev = 1 ]; then
    sec counters counters
    down
fi
rmmod nswap && echo "rmmod ok"
dmesg | grep -i nswap | tail -n 40 | sed 's/^/DMESG /'
echo "slots={slots}"
"""


def collect_vm(result, rounds):
    """(vm measurements, slot map measurements, failures) from the VM's output."""
    vm = {"rounds": [{} for _round in range(rounds)], "once": {}}
    failures = {}
    hists = {}
    for name, rnd, rc, text in parse_sections(result.output):
        key = name if rnd is None else f"{name}@{rnd}"
        if name.startswith("hist_"):
            hists[(name, rnd)] = parse_hist(text)
            continue
        if name == "guest_facts":
            vm["once"][name] = dict(re.findall(r"^(\w+)[=:]\s*(.+)$", text, re.M))
            continue
        if name == "counters":
            vm["once"][name] = {k: int(v) for k, v in re.findall(r"^(\w+)=(\d+)$", text, re.M)}
            continue
        if name == "slotmap":
            vm["once"]["slotmap_rc"] = rc
            vm["once"]["slotmap_text"] = text
            continue
        if name == "crc32c_drivers":
            vm["once"][name] = dict(re.findall(r"^(\S+) (\d+)$", text, re.M))
            continue
        parsed = parse_nswap_bench(text) if name == "proto_bench" else json_line(text)
        if parsed is None or rc != 0:
            failures[key] = {"rc": rc, "output": text[-1500:]}
        elif (cpu := guest_cpu(text)) is not None:
            parsed["guest_cpu_busy"] = cpu[0]
            if parsed.get("bytes"):  # blkbench: the client's CPU per page moved
                parsed["guest_cpu_us_per_page"] = round(cpu[1] * 1e6 / (parsed["bytes"] / PAGE), 1)
        if rnd is None:
            vm["once"][name] = parsed
        elif 1 <= rnd <= rounds:
            vm["rounds"][rnd - 1][name] = parsed
    get_hist, put_hist = [], []
    for rnd in range(1, rounds + 1):
        pre, post = hists.get(("hist_pre_read", rnd)), hists.get(("hist_post_read", rnd))
        if pre and post:
            get_hist = hist_add(get_hist, post, pre)
        after = hists.get(("hist_post_write", rnd))
        if post and after:
            put_hist = hist_add(put_hist, after, post)
    vm["latency_hist_get"] = get_hist
    vm["latency_hist_put"] = put_hist
    vm["latency_hist_get_p50_bucket_us"] = hist_percentile(get_hist, 0.5)
    vm["latency_hist_get_p99_bucket_us"] = hist_percentile(get_hist, 0.99)
    vm["latency_hist_put_p50_bucket_us"] = hist_percentile(put_hist, 0.5)
    vm["latency_hist_put_p99_bucket_us"] = hist_percentile(put_hist, 0.99)
    vm["dmesg_nswap"] = re.findall(r"^DMESG (.*)$", result.output, re.M)
    vm["rounds_cut"] = re.findall(r"^ROUNDS_CUT (.*)$", result.output, re.M)
    slots = SLOTMAP_DEVICE_SIZE // PAGE
    source_bytes, source_what = slot_bytes_from_source()
    slotmap = {"source_bytes_per_slot": source_bytes, "source": source_what}
    if "slotmap_text" in vm["once"]:
        slotmap.update(parse_slotmap(vm["once"].pop("slotmap_text"), slots))
        slotmap["rc"] = vm["once"].pop("slotmap_rc")
    return vm, slotmap, failures


# --- native phase ------------------------------------------------------------------------------


def run_native(nswapd, tapnet, tools, p, deadline):
    """nswapd (and the raw TCP server) on CPU 0, clients on CPU 1, the namespace's loopback.
    No round starts after ``deadline`` (time.monotonic())."""
    lo = "127.0.0.1"
    limit = str(p["tool_limit_s"])
    netbench = [tools["netbench"], "server", "--listen", f"{lo}:{NATIVE_NETBENCH_PORT}"]
    specs = [
        (
            ["taskset", "-c", "0"] + netbench + ["--time-limit", str(p["budget_s"])],
            NATIVE_NETBENCH_PORT,
            "netbench",
        ),
    ]
    client = ["taskset", "-c", "1"]
    bench = [tools["nswap-bench"], "-H", lo, "-p", str(NATIVE_NSWAPD_PORT), "-c", "4"]
    bench += ["-n", str(p["native_pages"]), "-d", "32", "-l", str(p["native_samples"])]
    nb_client = [tools["netbench"], "client"]
    address = f"{lo}:{NATIVE_NETBENCH_PORT}"
    runs = {
        "nswap_bench": client + bench,
        "raw_pingpong_4k": client
        + nb_client
        + ["pingpong", address, "--count", str(p["native_pingpong_count"])]
        + ["--time-limit", limit],
        "raw_stream": client
        + nb_client
        + ["stream", address, "--bytes", str(p["native_stream_bytes"])]
        + ["--size", str(STREAM_BIG_WRITE), "--time-limit", limit],
    }
    rounds = []
    failures = {}
    with (
        nswapd.running(
            tools["nswapd"],
            "--cache-size",
            "1G",
            listen=f"{lo}:{NATIVE_NSWAPD_PORT}",
            command=lambda argv: tapnet.command(["taskset", "-c", "0", *argv]),
        ) as nswapd_server,
        servers(tapnet, specs),
    ):
        comm = process_comm(nswapd_server.pid)
        for rnd in range(1, p["native_rounds"] + 1):
            if rnd > 1 and time.monotonic() > deadline:
                log(f"native: time budget spent, {rnd - 1} rounds")
                break
            this = {}
            for name, argv in runs.items():
                cpu0 = cpu_seconds(nswapd_server.pid)
                try:
                    proc = subprocess.run(
                        tapnet.command(argv),
                        capture_output=True,
                        text=True,
                        timeout=p["tool_limit_s"] * 2 + 15,
                        check=False,
                    )
                    out, text, rc = proc.stdout, proc.stdout + proc.stderr, proc.returncode
                except subprocess.TimeoutExpired:
                    out, text, rc = "", "timed out", None
                cpu1 = cpu_seconds(nswapd_server.pid)
                parsed = parse_nswap_bench(text) if name == "nswap_bench" else json_line(out)
                if parsed is None or rc != 0:
                    failures[f"native {name}@{rnd}"] = {"rc": rc, "output": text[-1500:]}
                if name == "nswap_bench" and parsed and None not in (cpu0, cpu1):
                    ops = 2 * p["native_pages"] + parsed["latency_samples"]
                    cpu = cpu1 - cpu0
                    parsed["server_cpu_s"] = round(cpu, 3)
                    parsed["server_page_ops"] = ops
                    parsed["server_ops_per_cpu_s"] = round(ops / cpu) if cpu > 0 else None
                    parsed["server_comm"] = comm
                this[name] = parsed
            rounds.append(this)
    return {"rounds": rounds}, failures


# --- the report --------------------------------------------------------------------------------


def pick(data, *path):
    for key in path:
        if not isinstance(data, dict) or data.get(key) is None:
            return None
        data = data[key]
    return data


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def row(metric, unit, values, bases=None, base_what="", target=None, kind=None, note="", cpu=None):
    """One table row from per-round values (and baselines).  The value, baseline and ratio are
    medians over the rounds (the ratio is the median of the per-round ratios); ``spread`` is
    the min..max of the per-round ratios; cpu: the guest's per-round CPU busy fractions during
    the measurement.  kind: 'max_ratio'/'min_ratio' compare the ratio with
    target, 'max'/'min' the value; None = information only."""
    bases = bases if bases is not None else [None] * len(values)
    ratios = [v / b for v, b in zip(values, bases, strict=True) if v is not None and b]
    value, base, ratio = median(values), median(bases), median(ratios)
    status = "info"
    if kind is not None:
        checked = ratio if kind.endswith("ratio") else value
        if checked is None:
            status = "NO DATA"
        elif kind.startswith("max"):
            status = "MET" if checked <= target else "MISSED"
        else:
            status = "MET" if checked >= target else "MISSED"
    target_text = {
        "max_ratio": f"<= {target}x",
        "min_ratio": f">= {target:.0%}" if target else "",
        "max": f"<= {target:g} {unit}" if target else "",
        "min": f">= {target:,.0f}" if target else "",
    }.get(kind, "")
    return {
        "metric": metric,
        "value": value,
        "unit": unit,
        "baseline": base,
        "baseline_what": base_what,
        "ratio": None if ratio is None else round(ratio, 3),
        "spread": [round(min(ratios), 3), round(max(ratios), 3)] if len(ratios) > 1 else None,
        "rounds": len([v for v in values if v is not None]),
        "per_round": values,
        "guest_cpu_busy": median(cpu or []),
        "target": target_text,
        "status": status,
        "note": note,
    }


def build_rows(vm, native, slotmap):
    rounds = vm["rounds"]

    def series(section, key, scale=1.0):
        out = []
        for rnd in rounds:
            value = pick(rnd, section, key)
            out.append(None if value is None else value * scale)
        return out

    pp50, pp99 = series("raw_pingpong_4k", "p50_us"), series("raw_pingpong_4k", "p99_us")
    cap = series("raw_stream_big", "pages_per_s")  # link capacity, in 4 KiB units
    st4k = series("raw_stream", "msgs_per_s")
    base50, base99 = "raw 4K ping-pong p50", "raw 4K ping-pong p99"
    base_cap, base_4k = "raw stream, 4K/s", "raw 4K-write stream"
    hist50 = vm.get("latency_hist_get_p50_bucket_us")
    once = vm["once"]
    nat = native["rounds"]

    def nat_series(section, key):
        return [pick(rnd, section, key) for rnd in nat]

    def busy(section):
        return series(section, "guest_cpu_busy")

    def put_row(metric, section, key, targeted=True):
        values, cpu = series(section, key), busy(section)
        if targeted:
            return row(
                metric,
                "pages/s",
                values,
                cap,
                base_cap,
                TARGET_PUT_STREAM_RATIO,
                "min_ratio",
                cpu=cpu,
            )
        return row(metric, "pages/s", values, cap, base_cap, cpu=cpu)

    rows = [
        row("raw TCP 4K ping-pong p50 (VM -> netns)", "us", pp50, cpu=busy("raw_pingpong_4k")),
        row("raw TCP 4K ping-pong p99", "us", pp99),
        row(
            "raw TCP 56B->4152B ping-pong p50",
            "us",
            series("raw_pingpong_getshape", "p50_us"),
            pp50,
            base50,
            note="GETPAGE-sized request and reply",
            cpu=busy("raw_pingpong_getshape"),
        ),
        row(
            f"raw TCP stream, {STREAM_BIG_WRITE >> 10}K writes",
            "MB/s",
            series("raw_stream_big", "mb_per_s"),
            note="the link's capacity",
            cpu=busy("raw_stream_big"),
        ),
        row(f"raw TCP stream, {STREAM_BIG_WRITE >> 10}K writes", "4K/s", cap),
        row(
            "raw TCP stream, 4K writes",
            "msg/s",
            st4k,
            cap,
            base_cap,
            note="one 4 KiB message per write(): syscall-bound under TCG",
            cpu=busy("raw_stream"),
        ),
        row(
            "GETPAGE p50, kernel (O_DIRECT 4K read QD1)",
            "us",
            series("blk_read_4k", "p50_us"),
            pp50,
            base50,
            TARGET_GET_P50_RATIO,
            "max_ratio",
            cpu=busy("blk_read_4k"),
        ),
        row("GETPAGE p99, kernel", "us", series("blk_read_4k", "p99_us"), pp99, base99),
        row(
            "GETPAGE p50, protocol (nswap-bench d=1)",
            "us",
            series("proto_bench", "get_p50_us"),
            pp50,
            base50,
            TARGET_GET_P50_RATIO,
            "max_ratio",
            note="vCPU: the whole nswap-bench run",
            cpu=busy("proto_bench"),
        ),
        row("GETPAGE p99, protocol", "us", series("proto_bench", "get_p99_us"), pp99, base99),
        row(
            "kernel GET frame RTT p50 (latency_hist)",
            "us",
            [hist50[0] if hist50 else None],
            note=f"lower bound of bucket [{hist50[0]}, {hist50[1]}) us, all rounds"
            if hist50
            else "",
        ),
        put_row("PUTPAGE stream, protocol (1 conn, d=32)", "proto_bench", "put_pages_per_s"),
        put_row("PUTPAGE stream, kernel (128K writes, QD1)", "blk_write_128k", "pages_per_s"),
        put_row("PUTPAGE stream, kernel (128K writes, QD4)", "blk_write_128k_qd4", "pages_per_s"),
        put_row("kernel 1M writes, QD1", "blk_write_1m", "pages_per_s", targeted=False),
        row(
            "kernel 4K writes, QD1 (once)",
            "pages/s",
            [pick(once, "blk_write_4k", "pages_per_s")],
            [median(cap)],
            base_cap,
            cpu=[pick(once, "blk_write_4k", "guest_cpu_busy")],
        ),
        row(
            "kernel 4K write p50, QD1 (once)",
            "us",
            [pick(once, "blk_write_4k", "p50_us")],
            [median(pp50)],
            base50,
        ),
        row(
            "PUTPAGE protocol vs 4K-write stream",
            "pages/s",
            series("proto_bench", "put_pages_per_s"),
            st4k,
            base_4k,
            note="the same messages/s against one-message-per-write raw TCP",
        ),
        put_row("GETPAGE stream, protocol (1 conn, d=32)", "proto_bench", "get_pages_per_s", False),
        row(
            "client CPU per GET page (4K reads QD1)",
            "us",
            series("blk_read_4k", "guest_cpu_us_per_page"),
            note="guest CPU not idle during the reads / pages: nswap.ko, block layer, TCP, "
            "blkbench",
        ),
        row(
            "client CPU per PUT page (128K writes QD1)",
            "us",
            series("blk_write_128k", "guest_cpu_us_per_page"),
            note="the same for writes",
        ),
        row(
            "client CPU per PUT page (128K writes QD4)",
            "us",
            series("blk_write_128k_qd4", "guest_cpu_us_per_page"),
        ),
        row(
            "nswapd native PUT (server on 1 core)",
            "pages/s",
            nat_series("nswap_bench", "put_pages_per_s"),
            nat_series("raw_stream", "pages_per_s"),
            "native raw stream, 4K/s",
            TARGET_NATIVE_PAGES_S,
            "min",
        ),
        row(
            "nswapd native GET (server on 1 core)",
            "pages/s",
            nat_series("nswap_bench", "get_pages_per_s"),
            nat_series("raw_stream", "pages_per_s"),
            "native raw stream, 4K/s",
            TARGET_NATIVE_PAGES_S,
            "min",
        ),
        row(
            "nswapd native page ops per server CPU-s",
            "ops/s",
            nat_series("nswap_bench", "server_ops_per_cpu_s"),
            note="(PUT+GET+latency ops) / nswapd CPU seconds: one-core capacity if the client "
            "kept up",
        ),
        row(
            "nswapd native GETPAGE p50 (d=1)",
            "us",
            nat_series("nswap_bench", "get_p50_us"),
            nat_series("raw_pingpong_4k", "p50_us"),
            "native raw ping-pong p50",
        ),
        row(
            "slot map bytes/slot (source)",
            "B",
            [slotmap.get("source_bytes_per_slot")],
            target=TARGET_SLOT_BYTES,
            kind="max",
            note=slotmap.get("source", ""),
        ),
        row(
            "slot map bytes/slot (vmallocinfo, 64G)",
            "B",
            [slotmap.get("slotmap_data_bytes_per_slot")],
            target=TARGET_SLOT_BYTES,
            kind="max",
            note="the map's vmalloc area, guard page excluded",
        ),
        row(
            "  + vmalloc page array and guard pages",
            "B",
            [slotmap.get("slotmap_all_areas_bytes_per_slot")],
            note="every nswap_slotmap_init area in /proc/vmallocinfo",
        ),
        row(
            "  VmallocUsed delta at power on / slots",
            "B",
            [slotmap.get("vmalloc_used_bytes_per_slot")],
            note="also counts the connection threads' stacks",
        ),
    ]
    return rows


def fmt(value):
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def table(rows):
    head = ("metric", "value", "unit", "baseline", "ratio", "spread", "target", "status", "vCPU")
    lines = []
    for r in rows:
        spread = r["spread"]
        lines.append(
            (
                r["metric"],
                fmt(r["value"]),
                r["unit"],
                fmt(r["baseline"]) + (f" ({r['baseline_what']})" if r["baseline_what"] else ""),
                "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
                f"{spread[0]:.2f}-{spread[1]:.2f}" if spread else "-",
                r["target"] or "-",
                r["status"],
                "" if r["guest_cpu_busy"] is None else f"{r['guest_cpu_busy']:.0%}",
            )
        )
    widths = [max(len(str(x[i])) for x in [head, *lines]) for i in range(len(head))]
    out = []
    for index, cells in enumerate([head, *lines]):
        out.append(
            "  ".join(
                str(c).rjust(w) if i in (1, 4, 5, 8) else str(c).ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# --- facts -------------------------------------------------------------------------------------


def loadavg():
    with open("/proc/loadavg") as handle:
        return [float(x) for x in handle.read().split()[:3]]


def other_qemus():
    """Command lines of qemu processes running now (other engineers' VMs share the CPUs)."""
    out = subprocess.run(
        ["pgrep", "-a", "qemu-system"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    return [line[:160] for line in out.splitlines()]


def host_facts():
    cpu = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def output(argv):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
            return (out.stdout or out.stderr).strip()
        return ""

    return {
        "host_kernel": os.uname().release,
        "cpu_model": cpu,
        "nproc": os.cpu_count(),
        "loadavg_start": loadavg(),
        "qemu_processes_at_start": other_qemus(),
        "qemu": output(["qemu-system-x86_64", "--version"]).split("\n")[0],
        "gcc": output(["gcc", "--version"]).split("\n")[0],
        "git_head": output(["git", "-C", REPO, "rev-parse", "HEAD"]),
        "git_status_src": output(["git", "-C", REPO, "status", "--porcelain", "src"]).split("\n"),
    }


# --- main --------------------------------------------------------------------------------------


def run_benchmark(args, p):
    kbuild, kernel, minivm, nswapd = import_lab()
    started = time.monotonic()
    facts = host_facts()
    log(f"load average at start: {facts['loadavg_start']}")
    log("building netbench, blkbench, nswap-bench (static) and nswapd into build/bench")
    tools = build_tools()
    kit = kernel.ensure_kernel_kit()
    if args.kmod:
        ko, kmod_hash = os.path.abspath(args.kmod), None
    else:
        ko, kmod_hash = build_kmod(kbuild, kit)
    facts.update(
        {
            "vm_kernel_abi": kit.abi,
            "vm_accel": "tcg",
            "vm_cpus": 1,
            "vm_memory_mib": VM_MEMORY_MIB,
            "nswap_ko": os.path.relpath(ko, REPO),
            "kmod_source_hash": kmod_hash,
        }
    )
    minivm.sweep_stale_netns()
    with minivm.netns_with_tap("datapath", host_cidr=HOST_CIDR, guest_cidr=GUEST_CIDR) as tapnet:
        facts["netns"] = tapnet.netns
        log("d. native: nswapd on CPU 0, clients on CPU 1, on the namespace's loopback")
        native_deadline = started + p["budget_s"] * 0.25
        native, native_failures = run_native(nswapd, tapnet, tools, p, native_deadline)
        vm_timeout = max(60, p["budget_s"] - (time.monotonic() - started) - 10)
        specs = [
            (
                [tools["netbench"], "server", "--listen", f"{tapnet.host_ip}:{NETBENCH_PORT}"]
                + ["--time-limit", str(int(vm_timeout) + 30)],
                NETBENCH_PORT,
                "netbench",
            ),
        ]
        with (
            servers(tapnet, specs),
            nswapd.running(
                tools["nswapd"],
                "--cache-size",
                "1G",
                listen=f"{tapnet.host_ip}:{NSWAPD_PORT}",
                command=tapnet.command,
            ),
        ):
            log(
                f"a.-c., e.: mini VM on the tap link, {p['rounds']} rounds "
                f"(limit {vm_timeout:.0f} s)"
            )
            result = minivm.run_script(
                kit,
                guest_script(p, tapnet.host_ip, int(vm_timeout) - 20),
                modules=[ko, "crc32c_generic", "crc32c_intel"],
                files={
                    "/bin/netbench": tools["netbench-static"],
                    "/bin/blkbench": tools["blkbench-static"],
                    "/bin/nswap-bench": tools["nswap-bench-static"],
                },
                memory_mib=VM_MEMORY_MIB,
                net=tapnet.nettap,
                timeout_s=vm_timeout,
            )
    facts["loadavg_end"] = loadavg()
    facts["qemu_processes_at_end"] = other_qemus()
    return facts, native, native_failures, result, started


def crc_driver(vm):
    """The crc32c driver libcrc32c bound (the highest priority one registered)."""
    drivers = pick(vm, "once", "crc32c_drivers") or {}
    return max(drivers, key=lambda name: int(drivers[name])) if drivers else None


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", maxsplit=1)[0],
        epilog="See benchmarks/README.md.",
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts, under 3 minutes")
    parser.add_argument("--output", help="JSON results file (default results/datapath-<date>.json)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3 quick, 5 full)")
    parser.add_argument("--kmod", help="use this nswap.ko instead of building src/kmod")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("datapath: run as root (network namespaces, taps)", file=sys.stderr)
        return 2
    profile_name = "quick" if args.quick else "full"
    p = dict(PROFILES[profile_name])
    if args.rounds:
        p["rounds"] = p["native_rounds"] = max(1, min(args.rounds, 20))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    output = args.output or os.path.join(REPO, "results", f"datapath-{stamp}.json")

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)  # run the finally blocks: servers, qemu, netns

    signal.signal(signal.SIGTERM, on_term)
    try:
        facts, native, failures, result, started = run_benchmark(args, p)
    except BenchError as exc:
        print(f"datapath: {exc}", file=sys.stderr)
        return 1
    vm, slotmap, vm_failures = collect_vm(result, p["rounds"])
    failures.update(vm_failures)
    rows = build_rows(vm, native, slotmap)
    argv_text = " ".join(sys.argv[1:] if argv is None else argv)
    report = {
        "benchmark": "nswap datapath",
        "profile": profile_name,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": f"benchmarks/datapath.py {argv_text}".strip(),
        "machine": facts,
        "profile_sizes": p,
        "rows": rows,
        "measurements": {"vm": vm, "native": native, "slotmap": slotmap},
        "vm_run": {
            "exit_status": result.exit_status,
            "wall_s": round(result.wall_s, 1),
            "boot_s": result.boot_s,
            "timed_out": result.timed_out,
            "error": result.error,
            "kernel_problems": result.kernel_problems,
        },
        "failures": failures,
        "wall_s": round(time.monotonic() - started, 1),
    }
    if result.exit_status != 0 or result.kernel_problems or failures:
        report["vm_run"]["console_tail"] = result.console_tail(80)
        report["vm_run"]["output_tail"] = result.output[-6000:]
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as handle:
        json.dump(report, handle, indent=1)
        handle.write("\n")
    print(table(rows))
    print()
    print(
        f"profile {profile_name}, {p['rounds']} VM rounds + {p['native_rounds']} native rounds "
        f"(value, baseline, ratio: medians; spread: min-max of per-round ratios)"
    )
    print(
        f"host: {facts['cpu_model']} x{facts['nproc']}, {facts['host_kernel']}, load "
        f"{facts['loadavg_start']} -> {facts['loadavg_end']}, other qemus "
        f"{len(facts['qemu_processes_at_start'])} -> {len(facts['qemu_processes_at_end'])}; "
        f"VM: {facts['vm_kernel_abi']}, "
        f"TCG, 1 vCPU, clocksource {pick(vm, 'once', 'guest_facts', 'clocksource')}, "
        f"crc32c {crc_driver(vm)}; "
        f"run {report['wall_s']} s (VM {report['vm_run']['wall_s']} s)"
    )
    if result.kernel_problems:
        print("KERNEL PROBLEMS:\n  " + "\n  ".join(result.kernel_problems[:20]))
    if result.exit_status != 0:
        print(f"VM script: exit {result.exit_status} ({result.error})")
    for line in vm["rounds_cut"]:
        print(f"rounds cut short by the time budget: {line}")
    for name, failure in failures.items():
        print(f"FAILED {name} (rc {failure['rc']}): {failure['output'][-600:]}")
    print(f"results: {os.path.relpath(os.path.abspath(output), REPO)}")
    no_data = [r["metric"] for r in rows if r["status"] == "NO DATA"]
    return 1 if (no_data or failures or result.exit_status != 0) else 0


if __name__ == "__main__":
    sys.exit(main())
