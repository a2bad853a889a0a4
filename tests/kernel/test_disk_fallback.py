"""nswap.ko's disk fallback (issue 13 item 5, docs/protocol.md 11.3): a device with a
backing block device writes a page there when no server has room or none is reachable,
reads each page from wherever the slot map says it is, and sends new pages to a server
again as soon as one has room.

One real nswapd on the host (reached from the mini VM at 10.0.2.2) whose cache limit the
test sets by SET_CACHE_LIMIT: 64 pages while the guest writes 256 (in 64 KiB requests, so
one request's pages split between the server and the disk), then 1024.  A second device
names a server nobody listens on: all of its pages go to disk.  On both kernels, since
opening a block device by path differs between them (nswap_compat.h).
"""

import re
import subprocess
import threading
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import migrationpeer, minivm, nswapd
from tests.integration.test_nswapd_gossip import free_tcp_port
from tests.kernel.test_migration import PAGE_IO, boot_while_draining
from tests.kernel.test_nswap_kmod import (
    FREED_MEMORY_CHECKS,
    HOST_SUITE,
    KIT_IDS,
    VM_MEMORY_MIB,
    WORKLOAD,
    boot_user_net,
    passed,
)

pytestmark = pytest.mark.vm

HOST = minivm.USER_NET_HOST_IP
FIRST, ROOM_BEFORE, ROOM_AFTER = 256, 64, 1024
LATER = 128  # pages written at slot 512 once the server has room again

GUEST = r"""
n=/sys/block/nswap0/nswap
load
mkdir $cfg && echo 64M > $cfg/size || fail "mkdir, size"
[ -z "$(cat $cfg/backing)" ] || fail "a backing device by default"
echo vdb > $cfg/backing 2>/dev/null && fail "a relative backing path taken"
echo /dev/vdb > $cfg/backing && echo "add %(host)s:%(port)d" > $cfg/servers || fail "vdb, add"
echo 1 > $cfg/power 2>/dev/null && fail "powered on with a backing device smaller than 64M"
[ "$(cat $cfg/power)" = 0 ] || fail "power on failed but the device is on"
echo /dev/vda > $cfg/backing && echo 1 > $cfg/power || fail "power on with /dev/vda"
[ "$(cat $cfg/backing)" = /dev/vda ] || fail "backing reads back wrong"
echo /dev/vdb > $cfg/backing 2>/dev/null && fail "backing changed while powered on"
servers_up 1

# the server has room for 64 pages: the rest of the 256 go to disk
dd if=/dev/urandom of=/tmp/first bs=4096 count=%(first)d 2>/dev/null
dd if=/tmp/first of=/dev/nswap0 bs=64K oflag=direct conv=notrunc 2>/dev/null || fail "write 1"
echo "full_disk_pages=$(cat $n/disk_pages)"
echo "full_disk_writes=$(cat $n/disk_writes)"
echo "full_puts=$(cat $n/puts)"
dd if=/dev/nswap0 of=/tmp/back bs=64K count=%(first_64k)d iflag=direct 2>/dev/null || fail "read 1"
cmp -s /tmp/first /tmp/back && echo "verified_full=1" || echo "verified_full=0"
echo "full_disk_reads=$(cat $n/disk_reads)"

# the host raises the server's limit once it has served those reads; a page written
# then goes remote (probe slot 2000, rewritten until it does)
dd if=/dev/urandom of=/tmp/probe bs=4096 count=1 2>/dev/null
i=0
while [ $i -lt 60 ]; do
    before=$(cat $n/puts)
    dd if=/tmp/probe of=/dev/nswap0 bs=4096 seek=2000 oflag=direct conv=notrunc 2>/dev/null \
        || fail "probe"
    [ $(cat $n/puts) -gt $before ] && break
    sleep 1; i=$((i+1))
done
echo "probe_s=$i"
dd if=/dev/urandom of=/tmp/later bs=4096 count=%(later)d 2>/dev/null
dd if=/tmp/later of=/dev/nswap0 bs=64K seek=%(later_64k)d oflag=direct conv=notrunc 2>/dev/null \
    || fail "write 2"
echo "later_disk_pages=$(cat $n/disk_pages)"
# rewriting the first 256 takes every page off the disk
dd if=/dev/urandom of=/tmp/first bs=4096 count=%(first)d 2>/dev/null
dd if=/tmp/first of=/dev/nswap0 bs=64K oflag=direct conv=notrunc 2>/dev/null || fail "write 3"
echo "end_disk_pages=$(cat $n/disk_pages)"
dd if=/dev/nswap0 of=/tmp/back bs=64K count=%(first_64k)d iflag=direct 2>/dev/null || fail "read 3"
cmp -s /tmp/first /tmp/back && echo "verified_first=1" || echo "verified_first=0"
dd if=/dev/nswap0 of=/tmp/back bs=64K skip=%(later_64k)d count=%(later_64k_n)d iflag=direct \
    2>/dev/null || fail "read later"
cmp -s /tmp/later /tmp/back && echo "verified_later=1" || echo "verified_later=0"
sed 's/^/server /' $cfg/servers
counters

# a second device whose only server is unreachable: every page on disk
d=/sys/kernel/config/nswap/unreachable
mkdir $d && echo 8M > $d/size && echo /dev/vda > $d/backing || fail "second device"
echo "add %(host)s:%(dead)d" > $d/servers || fail "second add"
echo 1 > $d/power 2>/dev/null && fail "two devices share /dev/vda"
echo /dev/nswap0 > $d/backing || fail "backing nswap0"
echo 1 > $d/power 2>/dev/null && fail "an nswap device backs another"
echo "/dev/vd c" > $d/backing 2>/dev/null && fail "a path with a space taken"
blockdev --setro /dev/vdc && echo /dev/vdc > $d/backing || fail "setro, backing vdc"
echo 1 > $d/power 2>/dev/null && fail "a read-only backing device taken"
blockdev --setrw /dev/vdc || fail "setrw"
echo /dev/vdc > $d/backing && echo 1 > $d/power || fail "second power on"
dd if=/dev/urandom of=/tmp/alone bs=4096 count=64 2>/dev/null
dd if=/tmp/alone of=/dev/nswap1 bs=64K oflag=direct conv=notrunc 2>/dev/null || fail "write alone"
dd if=/dev/nswap1 of=/tmp/back bs=64K count=4 iflag=direct 2>/dev/null || fail "read alone"
cmp -s /tmp/alone /tmp/back && echo "verified_alone=1" || echo "verified_alone=0"
for f in disk_pages disk_writes lost_pages errors; do
    echo "alone_$f=$(cat /sys/block/nswap1/nswap/$f)"
done
echo 0 > $d/power && rmdir $d || fail "second teardown"
dd if=/dev/vdc of=/tmp/raw bs=4096 count=64 2>/dev/null || fail "vdc not released"
cmp -s /tmp/alone /tmp/raw && echo "alone_on_vdc=1" || echo "alone_on_vdc=0"
teardown
"""


def raise_limit_after_reads(server, reads, limit, errors):
    """Give the server room (limit pages) once it has answered `reads` GETPAGEs."""
    try:
        server.wait_status("gets", reads)
        with server.client() as ctl:
            status, _ = ctl.set_cache_limit(limit)
            assert status == 0, status
    except Exception as exc:  # noqa: BLE001 -- reported by the test
        errors.append(repr(exc))


def sparse_image(path, size):
    subprocess.run(["truncate", "-s", size, str(path)], check=True)
    return str(path)


def test_pages_go_to_disk_while_no_server_has_room_and_every_byte_reads_back(
    kit, nswap_ko, nswapd_bin, tmp_path
):
    port, dead = free_tcp_port("0.0.0.0"), free_tcp_port("0.0.0.0")
    disks = [
        sparse_image(tmp_path / "backing.img", "64M"),
        sparse_image(tmp_path / "small.img", "16M"),
        sparse_image(tmp_path / "alone.img", "8M"),
    ]
    errors = []
    with nswapd.running(nswapd_bin, "--cache-size", "4M", listen="0.0.0.0:%d" % port) as srv:
        with srv.client() as ctl:
            assert ctl.set_cache_limit(ROOM_BEFORE)[0] == 0
        thread = threading.Thread(
            target=raise_limit_after_reads,
            args=(srv, ROOM_BEFORE, ROOM_AFTER, errors),
            daemon=True,
        )
        thread.start()
        result = boot_user_net(
            kit,
            nswap_ko,
            GUEST
            % dict(
                host=HOST,
                port=port,
                dead=dead,
                first=FIRST,
                first_64k=FIRST // 16,
                later=LATER,
                later_64k=512 // 16,
                later_64k_n=LATER // 16,
            ),  # fmt: skip
            disks=disks,
            append=FREED_MEMORY_CHECKS,
        )
        thread.join(timeout=30)
        status = srv.status()
    assert not errors, errors
    counters, values, _ = passed(result)
    out = result.output

    # full: the server took its 64 pages, the other 192 went to disk and came back from it
    assert values["full_disk_pages"] == FIRST - ROOM_BEFORE, out[-3000:]
    assert values["full_disk_writes"] == FIRST - ROOM_BEFORE, out[-3000:]
    assert values["full_puts"] == ROOM_BEFORE, out[-3000:]
    assert values["verified_full"] == 1, out[-3000:]
    assert values["full_disk_reads"] == FIRST - ROOM_BEFORE, out[-3000:]
    # room again: new pages go remote, and a rewrite moves every page off the disk
    assert values["probe_s"] < 60, out[-3000:]
    assert values["later_disk_pages"] == FIRST - ROOM_BEFORE, out[-3000:]
    assert values["end_disk_pages"] == 0, out[-3000:]
    assert values["verified_first"] == 1 and values["verified_later"] == 1, out[-3000:]
    # (and the probe, each time it found the server still full)
    assert counters["disk_writes"] == FIRST - ROOM_BEFORE + values["probe_s"], counters
    assert counters["lost_pages"] == 0 and counters["errors"] == 0, counters
    assert counters["disk_errors"] == 0, counters
    assert counters["retries"] == 0, counters  # ENOSPC with a backing device is no failure
    # the server holds the 256 + 128 + the probe: every live page, no old copy
    pages = re.search(r"^server %s:%d \S+ pages=(\d+)$" % (re.escape(HOST), port), out, re.M)
    assert pages and int(pages.group(1)) == FIRST + LATER + 1, out[-3000:]
    assert status["used_pages"] == 0, status  # power off dropped them all

    # nothing reachable: every page on disk, none lost, and the disk released at power off
    assert values["verified_alone"] == 1 and values["alone_on_vdc"] == 1, out[-3000:]
    assert (values["alone_disk_pages"], values["alone_disk_writes"]) == (64, 64), out[-3000:]
    assert values["alone_lost_pages"] == 0 and values["alone_errors"] == 0, out[-3000:]
    assert "UNLOADED clean" in out


GUEST_SWAP = r"""
load
mkdir $cfg && echo 512M > $cfg/size && echo /dev/vda > $cfg/backing || fail "mkdir, backing"
echo "add %(host)s:%(port)d" > $cfg/servers && echo 1 > $cfg/power || fail "add, power on"
servers_up 1
swap_on
limit_memory 48M
run_limited nswap-workload --workload W1 --ratio 2 --passes 1 --seed 11
wait $!
echo "workload_exit=$?"
cat /tmp/wl.json
counters
swapoff /dev/nswap0 || fail swapoff
teardown
"""


def boot_w1_with_backing(kit, nswap_ko, port, tmp_path):
    """GUEST_SWAP in a mini VM: W1 swaps to the nswapd at `port` with a 512 MiB backing
    device (a sparse image in tmp_path)."""
    return boot_user_net(
        kit,
        nswap_ko,
        GUEST_SWAP % dict(host=HOST, port=port),
        files={"/bin/nswap-workload": WORKLOAD},
        memory_mib=VM_MEMORY_MIB,
        disks=[sparse_image(tmp_path / "backing.img", "512M")],
    )


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_swapping_past_a_full_server_goes_to_disk_and_every_byte_verifies(
    kit, nswap_ko, nswapd_bin, workload, tmp_path
):
    """Reclaim itself through the fallback: a W1 run that swaps about 48 MiB while the only
    server has room for 16 MiB; the rest is written (from nswap's work item, GFP_NOIO) to
    the backing device and read back from it, every byte verified."""
    port = free_tcp_port("0.0.0.0")
    with nswapd.running(nswapd_bin, "--cache-size", "16M", listen="0.0.0.0:%d" % port):
        result = boot_w1_with_backing(kit, nswap_ko, port, tmp_path)
    counters, values, runs = passed(result)
    assert values["workload_exit"] == 0, result.output[-3000:]
    assert [r["mismatched_pages"] for r in runs] == [0], runs
    assert runs[0]["bytes_verified"] == runs[0]["size_bytes"] > (48 << 20), runs
    # both places were used: the server up to its 4096 pages, the disk for the rest
    assert 0 < counters["puts"] and counters["disk_writes"] > 4096, counters
    assert counters["disk_reads"] > 0 and counters["gets"] > 0, counters
    assert counters["lost_pages"] == 0 and counters["errors"] == 0, counters
    assert counters["disk_errors"] == 0, counters
    assert "UNLOADED clean" in result.output


# --- a backing device that fails I/O -------------------------------------------------------

TRANSIENT_SLOT, BROKEN_SLOT, FAULT_PAGES = 10, 20, 32
# QEMU blkdebug: the write of slot 10 (sector 80) fails once, slot 20's (sector 160) always
FAULT_RULES = """
[inject-error]
event = "write_aio"
errno = "5"
sector = "%d"
once = "on"

[inject-error]
event = "write_aio"
errno = "5"
sector = "%d"
once = "off"
""" % (TRANSIENT_SLOT * 8, BROKEN_SLOT * 8)

GUEST_FAULTY = r"""
n=/sys/block/nswap0/nswap
load
mkdir $cfg && echo 8M > $cfg/size && echo /dev/vda > $cfg/backing || fail "mkdir, backing"
echo 2 > $cfg/retries && echo 1000 > $cfg/timeout_ms || fail "retries, timeout"
echo "add %(host)s:%(dead)d" > $cfg/servers && echo 1 > $cfg/power || fail "add, power on"
dd if=/dev/urandom of=/tmp/data bs=4096 count=%(pages)d 2>/dev/null
i=0
while [ $i -lt %(pages)d ]; do
    dd if=/tmp/data of=/dev/nswap0 bs=4096 skip=$i seek=$i count=1 oflag=direct \
        conv=notrunc 2>/dev/null || echo "write_failed_$i=1"
    i=$((i+1))
done
i=0; good=0; bad=""
while [ $i -lt %(pages)d ]; do
    if [ $i -ne %(broken)d ]; then
        dd if=/dev/nswap0 of=/tmp/one bs=4096 skip=$i count=1 iflag=direct 2>/dev/null \
            || fail "read of slot $i"
        dd if=/tmp/data of=/tmp/want bs=4096 skip=$i count=1 2>/dev/null
        cmp -s /tmp/one /tmp/want && good=$((good+1)) || echo "differs_$i=1"
    fi
    i=$((i+1))
done
echo "verified_pages=$good"
counters
teardown
"""


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_a_backing_device_that_fails_writes_costs_only_the_page_that_never_lands(
    kit, nswap_ko, tmp_path
):
    """Every page goes to the backing device (the only server is unreachable), behind
    QEMU's blkdebug: slot 10's write fails once and is retried onto the disk; slot 20's
    fails every time, so that write fails (EIO to the writer, as a disk would) after its
    retries.  The other 31 pages read back byte for byte, the errors are counted, and the
    device powers off and unloads cleanly."""
    image = sparse_image(tmp_path / "backing.img", "8M")
    dead = free_tcp_port("0.0.0.0")
    result = boot_user_net(
        kit,
        nswap_ko,
        GUEST_FAULTY % dict(host=HOST, dead=dead, pages=FAULT_PAGES, broken=BROKEN_SLOT),
        disks=[minivm.FaultyDisk(image, FAULT_RULES)],
    )
    counters, values, _ = passed(result)
    out = result.output
    failed = sorted(int(k.rsplit("_", 1)[1]) for k in values if k.startswith("write_failed_"))
    assert failed == [BROKEN_SLOT], out[-3000:]
    assert not [k for k in values if k.startswith("differs_")], out[-3000:]
    assert values["verified_pages"] == FAULT_PAGES - 1, out[-3000:]
    # slot 10: one failed write then a good one; slot 20: its first try and 2 retries
    assert counters["disk_errors"] == 1 + 3, counters
    assert counters["disk_writes"] == FAULT_PAGES - 1, counters
    assert counters["lost_pages"] == 0, counters
    assert "UNLOADED clean" in out


# --- pages a server sends home (docs/protocol.md 11.1, "home") ------------------------------

HOME_PAGES = 1024

GUEST_HOME = r"""
n=/sys/block/nswap0/nswap
load
mkdir $cfg && echo 64M > $cfg/size && echo /dev/vda > $cfg/backing || fail "mkdir, backing"
echo "add %(host)s:%(port)d" > $cfg/servers && echo 1 > $cfg/power || fail "add, power on"
servers_up 1
dd if=/dev/urandom of=/tmp/data bs=4096 count=%(pages)d 2>/dev/null
dd if=/tmp/data of=/dev/nswap0 bs=64K oflag=direct conv=notrunc 2>/dev/null || fail "write"
i=0
while [ $(cat $n/punts_home) -lt %(pages)d ] && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done
echo "waited_s=$i"
sed 's/^/server /' $cfg/servers
dd if=/dev/nswap0 of=/tmp/back bs=64K count=%(count_64k)d iflag=direct 2>/dev/null || fail "read"
cmp -s /tmp/data /tmp/back && echo "verified=1" || echo "verified=0"
counters
teardown
"""


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_a_drained_server_with_no_room_elsewhere_sends_the_pages_home(
    kit, nswap_ko, nswapd_bin, tmp_path
):
    """The paper's last resort: the only server is drained (gossip off, so it knows no
    other server); it sends each page back to the client, which writes it to its backing
    device and records it there; the server drops it.  Every byte reads back, from disk."""
    port = free_tcp_port("0.0.0.0")
    disks = [sparse_image(tmp_path / "backing.img", "64M")]
    guest = GUEST_HOME % dict(host=HOST, port=port, pages=HOME_PAGES, count_64k=HOME_PAGES // 16)
    with nswapd.running(nswapd_bin, "--cache-size", "16M", listen="0.0.0.0:%d" % port) as srv:
        result, seen = boot_while_draining(
            srv, HOME_PAGES, lambda: boot_user_net(kit, nswap_ko, guest, disks=disks)
        )
        status, log = srv.status(), srv.log_text()
    counters, values, _ = passed(result)
    assert values["verified"] == 1, result.output[-3000:]
    assert counters["punts_home"] == HOME_PAGES and counters["punts_home_refused"] == 0
    # every page went to the server first, and every disk write was a page coming home (the
    # drain may start before the last write returns, so disk_pages then proves nothing)
    assert counters["puts"] == HOME_PAGES and counters["disk_writes"] == HOME_PAGES, counters
    assert counters["free_hints"] == HOME_PAGES, counters  # each PUTPAGE reply had the room
    assert counters["disk_pages"] == HOME_PAGES and counters["disk_reads"] >= HOME_PAGES
    assert counters["gets"] == 0, counters  # read from disk, none from the server
    assert counters["lost_pages"] == 0 and counters["errors"] == 0, counters
    assert seen.get("emptied"), (seen, log[-3000:])
    assert status["used_pages"] == 0 and status["punts_home"] == HOME_PAGES, status
    # HELLO offered RANGE_INVALIDATE, SWEEP, FREE_HINT and, with a backing device, PUNTHOME
    assert re.search(r"HELLO client_id 0x[0-9a-f]+ name '\S+' version 1 features 0xe1\b", log)
    assert re.search(r"^server \S+:%d \S+ pages=0\b" % port, result.output, re.M), result.output
    assert "UNLOADED clean" in result.output


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_pages_sent_home_while_a_workload_swaps_lose_nothing(
    kit, nswap_ko, nswapd_bin, workload, tmp_path
):
    """The same while W1 swaps: the server is drained mid-run, so pages come home while
    the device writes other pages to the same backing device (and rewrites slots), and
    every later write goes to disk; every byte verifies and the server ends empty."""
    port = free_tcp_port("0.0.0.0")
    with nswapd.running(nswapd_bin, "--cache-size", "256M", listen="0.0.0.0:%d" % port) as srv:
        result, seen = boot_while_draining(
            srv, 2000, lambda: boot_w1_with_backing(kit, nswap_ko, port, tmp_path)
        )
        status, log = srv.status(), srv.log_text()
    counters, values, runs = passed(result)
    assert values["workload_exit"] == 0, result.output[-3000:]
    assert [r["mismatched_pages"] for r in runs] == [0], runs
    assert counters["lost_pages"] == 0 and counters["errors"] == 0, counters
    assert seen.get("drained_from", 0) >= 2000 and seen.get("emptied"), (seen, log[-3000:])
    assert counters["punts_home"] > 0 and counters["disk_errors"] == 0, counters
    assert status["used_pages"] == 0 and status["punts_home"] == counters["punts_home"], status
    assert "UNLOADED clean" in result.output


# --- a server that sends pages home wrongly ---------------------------------------------------

HOME_OK = range(8)  # sent home at their current generation: taken
STALE, NOT_YET = 8, 9  # an older generation (dead: ESTALE); a newer one (not known yet: kept)
# malformed, ignored: generation 0, hop count 0, another client_id, flags, a short page,
# a slot past the device
BAD_GEN, BAD_HOP, BAD_CLIENT, BAD_FLAGS, BAD_LENGTH, BAD_SLOT = 10, 11, 12, 13, 14, 1 << 20
PEER_PAGES = 64

GUEST_ROGUE_HOME = r"""
n=/sys/block/nswap0/nswap
load
mkdir $cfg && echo 64M > $cfg/size && echo /dev/vda > $cfg/backing || fail "mkdir, backing"
echo "add %(host)s:%(port)d" > $cfg/servers && echo 1 > $cfg/power || fail "add, power on"
servers_up 1
write_pages %(pages)d
i=0
while { [ $(cat $n/punts_home) -lt %(taken)d ] \
        || [ $(cat $n/punts_home_refused) -lt %(refused)d ]; } \
    && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done
echo "waited_s=$i"
sleep 2
read_back_and_unload %(pages)d
"""


def send_home_wrongly(peer, done, errors):
    """Once the peer holds every page: send pages home, right and wrong."""
    try:
        deadline = time.monotonic() + 600
        while len(peer.pages) < PEER_PAGES:
            if time.monotonic() > deadline:
                raise AssertionError("the peer never held %d pages" % PEER_PAGES)
            time.sleep(0.2)
        (cid,) = {key[0] for key in peer.pages}
        gen = {slot: peer.pages[(cid, slot)][0] for (_, slot) in peer.pages}
        data = {slot: peer.pages[(cid, slot)][1] for (_, slot) in peer.pages}
        tag = iter(range(1, 100))
        for slot in HOME_OK:
            peer.send_home(cid, slot, gen[slot], 1, data[slot], next(tag))
        peer.send_home(cid, STALE, gen[STALE] - 1, 1, data[STALE], next(tag))
        peer.send_home(cid, NOT_YET, gen[NOT_YET] + 1, 1, bytes(4096), next(tag))
        peer.send_home(cid, BAD_GEN, 0, 1, data[BAD_GEN], next(tag))
        peer.send_home(cid, BAD_HOP, gen[BAD_HOP], 0, data[BAD_HOP], next(tag))
        peer.send_home(cid ^ 1, BAD_CLIENT, gen[BAD_CLIENT], 1, bytes(4096), next(tag))
        peer.send_home(cid, BAD_FLAGS, gen[BAD_FLAGS], 1, data[BAD_FLAGS], next(tag), flags=1)
        peer.send_home(cid, BAD_LENGTH, gen[BAD_LENGTH], 1, bytes(100), next(tag))
        peer.send_home(cid, BAD_SLOT, 1, 1, bytes(4096), next(tag))
        done.update(cid=cid, gen=gen)
    except Exception as exc:  # noqa: BLE001 -- reported by the test
        errors.append(repr(exc))


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_pages_sent_home_wrongly_change_nothing(kit, nswap_ko, tmp_path):
    """A scripted server sends pages home: current ones are taken (OK, read from disk since);
    an older generation is dead (ESTALE); a newer one than the client knows is kept where
    it is (ENOSPC: its PUTPAGE reply could still be on its way); malformed frames are
    ignored and counted.  Every byte still reads back, from disk or from the server."""
    done, errors = {}, []
    with migrationpeer.Peer(grant_home=True) as peer:
        thread = threading.Thread(target=send_home_wrongly, args=(peer, done, errors), daemon=True)
        thread.start()
        result = boot_user_net(
            kit,
            nswap_ko,
            PAGE_IO
            + GUEST_ROGUE_HOME
            % dict(host=HOST, port=peer.port, pages=PEER_PAGES, taken=len(HOME_OK), refused=8),
            disks=[sparse_image(tmp_path / "backing.img", "64M")],
        )
        thread.join(timeout=30)
        answers = {f.slot: f for f in peer.received(proto.PUNTPAGE | proto.REPLY)}
        gets = {f.slot for f in peer.received(proto.GETPAGE)}
    assert not errors and not peer.errors, (errors, peer.errors)
    counters, values, _ = passed(result)
    assert values["verified"] == 1, result.output[-3000:]
    assert counters["punts_home"] == len(HOME_OK) and counters["punts_home_refused"] == 8
    assert counters["disk_pages"] == len(HOME_OK), counters
    assert counters["lost_pages"] == 0 and counters["errors"] == 0, counters
    status = {slot: f.status for slot, f in answers.items()}
    expect = {slot: proto.OK for slot in HOME_OK}
    expect.update({STALE: proto.ESTALE, NOT_YET: proto.ENOSPC})
    assert status == expect, status  # and no answer to a malformed frame
    for slot in HOME_OK:  # each answer echoes what it answers
        f = answers[slot]
        assert (f.client_id, f.generation, f.hop_count) == (done["cid"], done["gen"][slot], 1)
    # read back: the pages taken from the disk, every other one from the server
    assert gets == set(range(PEER_PAGES)) - set(HOME_OK), sorted(gets)
    assert "UNLOADED clean" in result.output
