"""nswap.ko loaded and unloaded again and again (issue 14 item 7): each cycle loads the
module, powers a device on, swaps a workload through it (every byte verified), swaps off,
powers off and unloads, as an admin's restarts and upgrades do.  Nothing may stay behind:
no slab object, vmalloc area or page the cycles did not give back.

How a leak would show (the guest boots with slub_debug=U, so SLUB records who allocated
each object; its debugfs alloc_traces list the live objects by allocating function):
  - slab: for every unreclaimable cache, the live objects per allocating function after
    the warm-up cycles and after the last; a function that gained an object in (nearly)
    every measured cycle leaks one per cycle.  That covers nswap.ko's own allocations and
    the kernel's on its behalf (a socket, a disk, a tag set never put back);
  - vmalloc: the areas in /proc/vmallocinfo, and VmallocUsed;
  - pages: MemFree after dropping the page cache is printed, not judged, and in the long
    run beside a control of the same cycles with the kernel's RAM disk module (brd) in
    nswap.ko's place (see the end of the test: MemFree moves by megabytes either way).

The test command runs CYCLES (2 warm-up + 6 measured) on the host's kernel; the long run
(NSWAP_LONG_TESTS=1, README "Long runs") runs LONG_CYCLES.
"""

import os
import re

import pytest

from harness import minivm, nswapd
from tests.integration.test_nswapd_gossip import free_tcp_port
from tests.kernel.test_nswap_kmod import GUEST_PRELUDE, HOST_SUITE, KIT_IDS, WORKLOAD, passed

pytestmark = pytest.mark.vm

WARM_UP = 2
CYCLES = WARM_UP + 6
LONG_CYCLES = 100
# vmalloc noise: kernel stacks of kworkers that come and go (16 KiB each); a leaked slot
# map of the 256 MiB device is 64 KiB or more per cycle.
VMALLOC_SLACK_KIB = 128
# A function is a per-cycle leak when it gained at least this share of the measured cycles
# in live objects (and at least 3): noise is the odd object, a leak one per cycle.
LEAK_SHARE = 0.8
# Allocations that follow slab pages, not objects: a memcg-accounted slab page's vector of
# owners (grows with fragmentation as the workload's cgroup allocates, freed with the page).
PER_SLAB_PAGE = ("memcg_alloc_slab_cgroups",)
# Caches that keep freed objects for reuse, as live objects, up to a bound: a function's
# count there may swing by that bound between two snapshots whatever the cycles do.
#   skbuff_head_cache: the network stack's per-CPU cache of freed skb heads
#   (NAPI_SKB_CACHE_SIZE, 64 per CPU; the guest has 1 vCPU).  A 12-cycle run ended with
#   23 more heads of received packets (__build_skb) than at its warm snapshot (this, most
#   likely; it failed CI at 78f634c); an 8-cycle run that also listed the sockets ended
#   with none of those heads, and no socket left once TIME_WAIT had passed.
REUSE_BOUND = {"skbuff_head_cache": 64}

GUEST = r"""
mount -t debugfs none /sys/kernel/debug 2>/dev/null
[ -d /sys/kernel/debug/slab ] || fail "no /sys/kernel/debug/slab (slub_debug=U, debugfs)"
limit_memory 32M
# The caches to watch, listed once (sysfs reads free their state after an RCU grace
# period, which would show in a snapshot taken right after them): the unreclaimable
# ones, but those whose objects outlive a cycle by design: lsm_inode_cache (as long as
# an inode, which the kernel keeps or drops as it likes), and TIME_WAIT's (each cycle's
# connections closed by the client wait 60 s there, with their ports' bind buckets; a
# socket never released would stay in the TCP cache itself, which is watched).
caches=""
for d in /sys/kernel/debug/slab/*; do
    c=$(basename $d)
    case $c in lsm_inode_cache|tw_sock_TCP|tcp_bind_bucket|tcp_bind2_bucket) continue;; esac
    [ "$(cat /sys/kernel/slab/$c/reclaim_account 2>/dev/null)" = 0 ] && caches="$caches $c"
done
snapshot() {  # label: memory figures, and live slab objects by allocating function
    sync; echo 3 > /proc/sys/vm/drop_caches
    for k in MemFree SUnreclaim Percpu VmallocUsed; do
        echo "mem_$1_$k=$(sed -n "s/^$k: *\([0-9]*\).*/\1/p" /proc/meminfo)"
    done
    echo "mem_$1_vmap_areas=$(wc -l < /proc/vmallocinfo)"
    for c in $caches; do
        sed -n "s|^ *\([0-9][0-9]*\) \([^ ]*\) .*|site $1 $c \1 \2|p" \
            /sys/kernel/debug/slab/$c/alloc_traces
    done
}
cycle() {  # n
    dev_up
    run_limited nswap-workload --workload W1 --size 48M --passes 1 --seed $1
    wait $! || fail "workload of cycle $1"
    grep -q '"mismatched_pages":0,' /tmp/wl.json || fail "cycle $1: $(cat /tmp/wl.json)"
    swapoff $dev || fail "swapoff in cycle $1"
    dev_down
    echo "cycle_done=$1"
}
n=1
while [ $n -le %(warm_up)d ]; do cycle $n; n=$((n+1)); done
snapshot prime > /dev/null  # debugfs keeps state per file once opened: not a leak
snapshot warm
while [ $n -le %(cycles)d ]; do cycle $n; n=$((n+1)); done
snapshot end
echo "cycles=%(cycles)d"
"""

# The swap device of the cycles (dev; dev_up: load, set up, swapon; dev_down: after
# swapoff, unload): nswap.ko against the host's nswapd, or, for the control, the kernel's
# own RAM disk module (brd) in its place: the same cycles of module load, swap and unload
# with no nswap.ko, which tells the kernel's own drift from nswap.ko's.
NSWAP_DEVICE = r"""
dev=/dev/nswap0
dev_up() { load; create 256M %(host)s:%(port)d; swap_on; }
dev_down() { teardown; }
"""
RAM_DISK_DEVICE = r"""
dev=/dev/ram0
dev_up() {
    modprobe brd rd_nr=1 rd_size=262144 || fail "modprobe brd"
    mkswap $dev > /dev/null && swapon $dev || fail "swapon $dev"
}
dev_down() { rmmod brd || fail "rmmod brd"; }
"""

SITE_RE = re.compile(r"^site (warm|end) (\S+) (\d+) (\S+)$", re.M)


def live_objects(output):
    """{label: {(cache, function): live objects}} from the guest's snapshots; a function
    is named without its offset, so that one function's call sites add up."""
    sites = {"warm": {}, "end": {}}
    for label, cache, count, where in SITE_RE.findall(output):
        key = (cache, where.split("+")[0])
        sites[label][key] = sites[label].get(key, 0) + int(count)
    return sites


def growing_sites(sites, measured_cycles):
    """The (cache, function, warm, end) that gained an object in nearly every cycle."""
    floor = max(3, int(LEAK_SHARE * measured_cycles))
    return [
        (cache, fn, sites["warm"].get((cache, fn), 0), end)
        for (cache, fn), end in sorted(sites["end"].items())
        if end - sites["warm"].get((cache, fn), 0) >= floor + REUSE_BOUND.get(cache, 0)
        and fn not in PER_SLAB_PAGE
    ]


def test_growing_sites_finds_one_object_per_cycle_and_ignores_noise():
    """The leak rule on made-up snapshots: +10 in 10 cycles is a leak, +2 is noise, a
    function seen only at the end counts from 0, per-slab-page vectors are no objects, and
    a cache that keeps freed objects may swing by its bound, not more."""
    sites = {
        "warm": {("kmalloc-64", "a"): 5, ("kmalloc-64", "b"): 7},
        "end": {
            ("kmalloc-64", "a"): 15,
            ("kmalloc-64", "b"): 9,
            ("kmalloc-1k", "c"): 8,
            ("kmalloc-96", PER_SLAB_PAGE[0]): 40,
            ("skbuff_head_cache", "d"): 23,
            ("skbuff_head_cache", "e"): 64 + 8,
        },
    }
    assert growing_sites(sites, 10) == [
        ("kmalloc-1k", "c", 0, 8),
        ("kmalloc-64", "a", 5, 15),
        ("skbuff_head_cache", "e", 0, 72),
    ]
    assert growing_sites(sites, 100) == []


def run_cycles(kit, device, cycles, modules, net=None, **where):
    """GUEST_PRELUDE, `device` and GUEST in a mini VM: (NAME=VALUE values, live objects)."""
    result = minivm.run_script(
        kit,
        GUEST_PRELUDE + (device + GUEST) % dict(where, warm_up=WARM_UP, cycles=cycles),
        modules=modules,
        files={"/bin/nswap-workload": WORKLOAD},
        memory_mib=256,
        net=net,
        append="slub_debug=U",
        timeout_s=120 + 30 * cycles,
    )
    _counters, values, _ = passed(result)
    assert values["cycles"] == cycles and values["cycle_done"] == cycles, result.output[-3000:]
    sites = live_objects(result.output)
    assert len(sites["warm"]) > 50 and len(sites["end"]) > 50, result.output[-3000:]
    return values, sites


def memfree_loss_kib(values):
    return values["mem_warm_MemFree"] - values["mem_end_MemFree"]


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_load_swap_unload_cycles_leave_nothing_behind(kit, nswap_ko, nswapd_bin, workload):
    long_run = os.environ.get("NSWAP_LONG_TESTS") == "1"
    cycles = LONG_CYCLES if long_run else CYCLES
    measured = cycles - WARM_UP
    port = free_tcp_port("0.0.0.0")
    with nswapd.running(nswapd_bin, "--cache-size", "256M", listen="0.0.0.0:%d" % port) as srv:
        values, sites = run_cycles(
            kit,
            NSWAP_DEVICE,
            cycles,
            [nswap_ko, "crc32c_generic"],
            net="user",
            host=minivm.USER_NET_HOST_IP,
            port=port,
        )
        status = srv.status()
    # every cycle's pages came back to the client and were dropped at its power off
    assert status["used_pages"] == 0 and status["puts"] > 0 and status["gets"] > 0, status
    growing = growing_sites(sites, measured)
    assert growing == [], "objects that grow with the cycles: %s" % growing
    # nswap.ko's own functions hold nothing once it is gone: after rmmod their addresses
    # are no symbol any more, so a leaked object of theirs shows as a bare address
    for label in ("warm", "end"):
        assert not [k for k in sites[label] if k[1].startswith("0x")], (label, sites[label])

    def mem(label, key):
        return values["mem_%s_%s" % (label, key)]

    floor = max(3, int(LEAK_SHARE * measured))
    assert mem("end", "vmap_areas") - mem("warm", "vmap_areas") < floor, values
    assert mem("end", "VmallocUsed") - mem("warm", "VmallocUsed") < VMALLOC_SLACK_KIB, values
    for key in ("MemFree", "SUnreclaim", "Percpu", "VmallocUsed", "vmap_areas"):
        print("%s: %d -> %d" % (key, mem("warm", key), mem("end", key)))
    if not long_run:
        return
    # MemFree (after drop_caches) over the long run, beside the control: the same cycles
    # with the kernel's RAM disk in nswap.ko's place.  Printed, not judged: between two
    # snapshots it moves by megabytes either way (2026-12-07: nswap.ko's run lost 1,300
    # KiB over 98 cycles once, then gained 10,524 KiB; the control gained 88), more than
    # a page a cycle would add up to; the slab and vmalloc checks above are what catch a
    # leak (a module leaking 200 bytes a load failed them).
    control, _ = run_cycles(kit, RAM_DISK_DEVICE, cycles, ["brd"])
    print("MemFree lost over %d cycles: nswap.ko %d KiB, RAM disk control %d KiB"
          % (measured, memfree_loss_kib(values), memfree_loss_kib(control)))  # fmt: skip
