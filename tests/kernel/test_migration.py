"""nswap.ko's side of page migration (UPDATE, docs/protocol.md 11.1), with injected frames.

The first test: two scripted servers (harness/migrationpeer.py) on the host's loopback,
reached from the mini VM at 10.0.2.2: B takes the writes (C is hinted full), then the test
copies pages from B to C and makes C, and B, send UPDATEs: in order, duplicated, out of
order (a smaller hop count after a larger one), for a stale generation, and malformed.  The
client must move a slot exactly when the UPDATE names its current copy with a larger hop
count, tell the old server to drop it, tell the sender to drop a copy the slot map no longer
names, ignore the rest, and read every byte back from wherever the page lives.

The second: the pages are punted to a real nswapd, whose UPDATEs the client follows.  The
third: a real nswapd whose elastic cache is squeezed punts them itself.
"""

import contextlib
import re
import struct
import threading
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import migrationpeer, minivm, nswapd
from tests.integration.test_nswapd_gossip import free_tcp_port, free_udp_port
from tests.kernel.test_nswap_kmod import (
    HOST_SUITE,
    KIT_IDS,
    VM_MEMORY_MIB,
    WORKLOAD,
    boot_user_net,
    passed,
)

pytestmark = pytest.mark.vm

HOST = minivm.USER_NET_HOST_IP
PAGES = 64
MOVED = list(range(16)) + [20]  # slots the client must move to C
BACK = 1  # of those, the slot that is then moved back to B (hop 2), then raised to hop 3
# slots of the refused UPDATEs (NO_MIGRATION: from a server that did not negotiate it)
STALE_GEN, ZERO_HOP, OLD_HOP, PAST_END, NO_MIGRATION = 30, 31, 20, 1 << 20, 40
MIGRATIONS, REFUSED = len(MOVED) + 1, 6

# The guest scripts' common steps: N pages of random data written to the raw device, and
# (once the pages moved) read back, compared, the counters and the servers listed, unloaded.
PAGE_IO = r"""
write_pages() {
    dd if=/dev/urandom of=/tmp/data bs=4096 count=$1 2>/dev/null
    dd if=/tmp/data of=/dev/nswap0 bs=4096 count=$1 oflag=direct conv=notrunc 2>/dev/null \
        || fail "write"
}
read_back_and_unload() {
    sed 's/^/server /' $cfg/servers
    dd if=/dev/nswap0 of=/tmp/back bs=4096 count=$1 iflag=direct 2>/dev/null || fail "read"
    cmp /tmp/data /tmp/back && echo "verified=1" || echo "verified=0"
    counters
    echo 0 > $cfg/power && rmdir $cfg && rmmod nswap || fail "teardown"
    echo "UNLOADED clean"
}
"""

GUEST = r"""
load
mkdir $cfg && echo 64M > $cfg/size || fail "mkdir, size"
[ "$(cat $cfg/migration)" = 0 ] || fail "migration on by default"
echo 1 > $cfg/migration || fail "migration on"
for port in %(b)d %(c)d %(d)d; do echo "add %(host)s:$port" > $cfg/servers || fail "add"; done
echo "hint %(host)s:%(c)d 0 65536" > $cfg/servers || fail "hint C full"
echo "hint %(host)s:%(d)d 0 65536" > $cfg/servers || fail "hint D full"
echo 1 > $cfg/power || fail "power on"
echo 0 > $cfg/migration 2>/dev/null && fail "migration changed while powered on"
write_pages %(pages)d
echo "written=1"
n=/sys/block/nswap0/nswap
i=0
while { [ $(cat $n/migrations) -lt %(moved)d ] || [ $(cat $n/updates_refused) -lt %(refused)d ]; } \
    && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done
echo "waited_s=$i"
read_back_and_unload %(pages)d
"""


def inject(b, c, d, done, errors):
    """What server C (and B) tell the client, once B holds every page."""
    try:
        deadline = time.monotonic() + 600
        while len(b.pages) < PAGES:
            if time.monotonic() > deadline:
                raise AssertionError("B never held %d pages: %d" % (PAGES, len(b.pages)))
            time.sleep(0.2)
        (cid,) = {key[0] for key in b.pages}
        gen = {slot: b.pages[(cid, slot)][0] for (_, slot) in b.pages}
        back = b.pages[(cid, BACK)][1]
        for slot in MOVED:
            c.store(cid, slot, gen[slot], b.pages[(cid, slot)][1])
        for slot in range(16):
            c.send_update(cid, slot, gen[slot], 1)  # moves
        c.send_update(cid, 0, gen[0], 1)  # duplicate: nothing
        c.send_update(cid, OLD_HOP, gen[OLD_HOP], 3)  # moves, hop 3
        time.sleep(2)
        b.send_update(cid, OLD_HOP, gen[OLD_HOP], 2)  # older than hop 3: refused, B drops
        c.send_update(cid, STALE_GEN, gen[STALE_GEN] - 1, 1)  # stale: refused, C drops
        c.send_update(cid, ZERO_HOP, gen[ZERO_HOP], 0)  # malformed: refused
        c.send_update(cid, PAST_END, 1, 1)  # past the device: refused
        # BACK comes back to B (hop 2): moved again, C told to drop its hop-1 copy; then B
        # says hop 3 (the page went away and came back once more): only the hop is raised,
        # so C's late hop-2 UPDATE of the move in between is refused
        b.store(cid, BACK, gen[BACK], back, hop_count=2)
        b.send_update(cid, BACK, gen[BACK], 2)
        time.sleep(1)
        b.store(cid, BACK, gen[BACK], back, hop_count=3)
        b.send_update(cid, BACK, gen[BACK], 3)
        time.sleep(1)
        c.send_update(cid, BACK, gen[BACK], 2)
        d.store(cid, NO_MIGRATION, gen[NO_MIGRATION], b.pages[(cid, NO_MIGRATION)][1])
        d.send_update(cid, NO_MIGRATION, gen[NO_MIGRATION], 1)  # not negotiated: refused
        done.update(cid=cid, gen=gen)
    except Exception as exc:  # noqa: BLE001 -- reported by the test
        errors.append(repr(exc))


def invalidates(peer):
    """(first slot, count, generation, hop count or None without NSWAP_F_HOP) of the
    INVALIDATEs a peer got that name a generation."""
    out = []
    for f in peer.received(proto.INVALIDATE):
        count = struct.unpack("<Q", f.payload)[0] if f.flags & proto.F_RANGE else 1
        if f.generation != proto.GEN_ANY:
            hop = f.hop_count if f.flags & proto.F_HOP else None
            out.append((f.slot, count, f.generation, hop))
    return out


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_updates_move_exactly_the_current_copies_and_every_byte_reads_back(kit, nswap_ko):
    done, errors = {}, []
    with (
        migrationpeer.Peer() as b,
        migrationpeer.Peer() as c,
        migrationpeer.Peer(grant_migration=False) as d,
    ):
        thread = threading.Thread(target=inject, args=(b, c, d, done, errors), daemon=True)
        thread.start()
        result = boot_user_net(
            kit,
            nswap_ko,
            PAGE_IO
            + GUEST
            % dict(
                host=HOST,
                b=b.port,
                c=c.port,
                d=d.port,
                pages=PAGES,
                moved=MIGRATIONS,
                refused=REFUSED,
            ),  # fmt: skip
        )
        thread.join(timeout=30)
        b_inval, c_inval = invalidates(b), invalidates(c)
        c_gets = {f.slot for f in c.received(proto.GETPAGE)}
        b_gets = {f.slot for f in b.received(proto.GETPAGE)}
        d_seen = {f.type for f in d.received(proto.INVALIDATE) if f.generation != proto.GEN_ANY}
    assert not (errors or b.errors or c.errors or d.errors), (errors, b.errors, c.errors, d.errors)
    counters, values, _ = passed(result)
    out = result.output
    assert values["verified"] == 1, out[-3000:]
    assert counters["migrations"] == MIGRATIONS, counters
    assert counters["updates_refused"] == REFUSED, counters
    assert counters["errors"] == 0 and counters["lost_pages"] == 0, counters
    gen = done["gen"]

    # reads went where the slot map said: the moved slots to C, the rest (and BACK) to B
    on_c = set(MOVED) - {BACK}
    assert c_gets == on_c, sorted(c_gets)
    assert b_gets == set(range(PAGES)) - on_c, sorted(b_gets)
    pages = dict(re.findall(r"^server \S+:(\d+) \S+ pages=(\d+)", out, re.M))
    assert (int(pages[str(b.port)]), int(pages[str(c.port)])) == (PAGES - len(on_c), len(on_c))

    # B was told to drop each moved copy, its own of hop 0 only (NSWAP_F_HOP), and the copy
    # of the refused hop-2 UPDATE; C the stale copy of the older generation and its copies of
    # BACK at hop 1 (moved back) and 2 (refused): nothing else.  (INVALIDATEs of every
    # generation, at first contact and power off, are left out.)
    assert sorted(b_inval) == sorted(
        [(slot, 1, gen[slot], 0) for slot in MOVED] + [(OLD_HOP, 1, gen[OLD_HOP], 2)]
    ), b_inval
    assert sorted(c_inval) == sorted(
        [
            (STALE_GEN, 1, gen[STALE_GEN] - 1, 1),
            (BACK, 1, gen[BACK], 1),
            (BACK, 1, gen[BACK], 2),
        ]
    ), c_inval
    assert not d_seen  # D's UPDATE changed nothing: slot 40 still read from B
    assert "UPDATE slot 40 generation %d hop 1 from" % gen[NO_MIGRATION] in result.console
    assert "UNLOADED clean" in out


GUEST_TO_NSWAPD = r"""
load
mkdir $cfg && echo 64M > $cfg/size || fail "mkdir, size"
[ "$(cat $cfg/migration)" = 0 ] || fail "migration on by default"
echo 1 > $cfg/migration || fail "migration on"
for port in %(b)d %(c)d; do echo "add %(host)s:$port" > $cfg/servers || fail "add"; done
echo "hint %(host)s:%(c)d 0 65536" > $cfg/servers || fail "hint C full"
echo 1 > $cfg/power || fail "power on"
write_pages %(pages)d
n=/sys/block/nswap0/nswap
i=0
while [ $(cat $n/migrations) -lt %(pages)d ] && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done
read_back_and_unload %(pages)d
"""


def punt_all(b, nswapd_c, pages, errors):
    """Server B's part: once B holds every page, PUNTPAGE each to the real nswapd C."""
    try:
        deadline = time.monotonic() + 600
        while len(b.pages) < pages:
            if time.monotonic() > deadline:
                raise AssertionError("B never held %d pages: %d" % (pages, len(b.pages)))
            time.sleep(0.2)
        with nswapd_c.client() as c:
            c.hello(0xB0B0, "server-b", features=proto.FEAT_MIGRATION)
            for (cid, slot), (generation, data) in sorted(b.pages.items()):
                reply = c.request(
                    proto.PUNTPAGE, data, client_id=cid, slot=slot, generation=generation,
                    hop_count=1,
                )  # fmt: skip
                assert reply.status == proto.OK, reply
    except Exception as exc:  # noqa: BLE001 -- reported by the test
        errors.append(repr(exc))


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_pages_punted_to_nswapd_are_found_there_through_its_updates(kit, nswap_ko, nswapd_bin):
    pages, errors = 32, []
    with (
        migrationpeer.Peer() as b,
        nswapd.running(nswapd_bin, "--cache-size", "1M", listen="127.0.0.1:0") as c,
    ):
        thread = threading.Thread(target=punt_all, args=(b, c, pages, errors), daemon=True)
        thread.start()
        result = boot_user_net(
            kit,
            nswap_ko,
            PAGE_IO + GUEST_TO_NSWAPD % dict(host=HOST, b=b.port, c=c.port, pages=pages),
        )
        thread.join(timeout=30)
        status = c.status()
        log = c.log_text()
        b_gets = {f.slot for f in b.received(proto.GETPAGE)}
    assert not errors and not b.errors, (errors, b.errors)
    counters, values, _ = passed(result)
    assert values["verified"] == 1, result.output[-3000:]
    assert counters["migrations"] == pages and counters["updates_refused"] == 0, counters
    assert counters["errors"] == 0, counters
    # every read went to nswapd, which sent one UPDATE per page on a connection of the client
    assert not b_gets, sorted(b_gets)
    assert status["gets"] >= pages, status
    assert re.search(r"HELLO client_id 0x[0-9a-f]+ name '\S+' version 1 features 0xa3\b", log), log
    assert "UNLOADED clean" in result.output


@contextlib.contextmanager
def gossiping_b_and_c(nswapd_bin, b_args, c_args):
    """nswapd B and C for a mini-VM client (on every host address, reached at 10.0.2.2),
    gossiping on 127.0.0.2 and 127.0.0.3 (each the other's seed, 100 ms rounds), so that
    either can move pages to the other: yields (B, C)."""
    b_gossip, c_gossip = "127.0.0.2", "127.0.0.3"
    gossip = ["--gossip", "on", "--gossip-interval", 100]
    gossip += ["--gossip-port", free_udp_port([b_gossip, c_gossip])]
    with (
        nswapd.running(
            nswapd_bin, *gossip, "--gossip-address", b_gossip, "--gossip-seeds", c_gossip,
            *b_args, listen="0.0.0.0:%d" % free_tcp_port("0.0.0.0"),
        ) as b,
        nswapd.running(
            nswapd_bin, *gossip, "--gossip-address", c_gossip, "--gossip-seeds", b_gossip,
            *c_args, listen="0.0.0.0:%d" % free_tcp_port("0.0.0.0"),
        ) as c,
    ):  # fmt: skip
        yield b, c


GUEST_SQUEEZED = r"""
load
mkdir $cfg && echo 64M > $cfg/size && echo 1 > $cfg/migration || fail "mkdir, size, migration"
for port in %(b)d %(c)d; do echo "add %(host)s:$port" > $cfg/servers || fail "add"; done
echo "hint %(host)s:%(c)d 0 65536" > $cfg/servers || fail "hint C full"
echo 1 > $cfg/power || fail "power on"
write_pages %(pages)d
n=/sys/block/nswap0/nswap
i=0
while [ $(cat $n/migrations) -lt %(moved)d ] && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done
sleep 3
read_back_and_unload %(pages)d
"""


def squeeze(b, meminfo, pages, seen, errors):
    """Once B holds the pages, its node runs short; then watch what B holds."""
    try:
        deadline = time.monotonic() + 600
        b.wait_status("used_pages", pages)
        tmp = meminfo.with_suffix(".tmp")
        tmp.write_text("MemAvailable:    1024 kB\n")
        tmp.replace(meminfo)
        while time.monotonic() < deadline and not seen.get("stop"):
            used = b.status(check=False)
            if used:
                seen["min_used"] = min(seen.get("min_used", pages), used["used_pages"])
            time.sleep(0.3)
    except Exception as exc:  # noqa: BLE001 -- reported by the test
        errors.append(repr(exc))


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_a_squeezed_server_moves_its_pages_and_every_byte_comes_back(
    kit, nswap_ko, nswapd_bin, tmp_path
):
    """The issue's squeeze test on raw I/O: B (elastic, gossip) holds a client's pages, its
    node runs short (a fake MemAvailable), its cache shrinks below its use and it punts the
    pages to C (the gossip member with room); C's UPDATEs move them in the client, which
    drops B's copies: every byte verified, B ends holding none of the moved pages."""
    pages = 2048
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable:    1048576 kB\n")
    elastic = [
        "--cache-size", "16M", "--elastic", "on", "--elastic-step", "16M",
        "--elastic-reserve", "64M", "--elastic-interval", 100, "--meminfo-file", meminfo,
        "--pressure-file", "",
    ]  # fmt: skip
    seen, errors = {}, []
    with gossiping_b_and_c(nswapd_bin, elastic, ["--cache-size", "64M"]) as (b, c):
        b_port, c_port = b.port, c.port
        thread = threading.Thread(
            target=squeeze, args=(b, meminfo, pages, seen, errors), daemon=True
        )
        thread.start()
        result = boot_user_net(
            kit,
            nswap_ko,
            PAGE_IO
            + GUEST_SQUEEZED % dict(host=HOST, b=b_port, c=c_port, pages=pages, moved=pages - 1),
        )
        seen["stop"] = True
        thread.join(timeout=30)
        c_status = c.status()
        b_log = b.log_text()
    assert not errors, errors
    counters, values, _ = passed(result)
    assert values["verified"] == 1, result.output[-3000:]
    # all but the one page B's shrunk limit keeps moved; read back from C
    assert counters["migrations"] == pages - 1 and counters["updates_refused"] == 0, counters
    assert counters["errors"] == 0 and counters["lost_pages"] == 0, counters
    assert c_status["gets"] >= pages - 1 and c_status["puts"] == 0, c_status
    assert seen["min_used"] <= 1, (seen, b_log[-3000:])
    assert re.search(r"migration: moved \d+ pages to 127\.0\.0\.3:%d" % c_port, b_log), b_log
    assert "UNLOADED clean" in result.output


GUEST_DRAIN = r"""
load
mkdir $cfg && echo 512M > $cfg/size && echo 1 > $cfg/migration || fail "mkdir, size, migration"
for port in %(b)d %(c)d; do echo "add %(host)s:$port" > $cfg/servers || fail "add"; done
echo 1 > $cfg/power || fail "power on"
swap_on
limit_memory 48M
run_limited nswap-workload --workload W1 --ratio 2 --passes 3 --seed 12
wait $!
echo "workload_exit=$?"
cat /tmp/wl.json
sed 's/^/server /' $cfg/servers
counters
swapoff /dev/nswap0 || fail swapoff
teardown
"""


def drain_when_holding(b, pages, seen, errors):
    """Once B holds `pages` pages of the running workload: drain it (what nswap_server
    state=drained sends), then watch it empty."""
    try:
        deadline = time.monotonic() + 500
        b.wait_status("used_pages", pages, timeout=500)
        with b.client() as ctl:
            status, st = ctl.set_cache_limit(0)
        assert status == proto.OK and st.state_flags & proto.STATE_DRAINING, st
        seen["drained_from"] = st.used_pages
        while time.monotonic() < deadline and not seen.get("stop"):
            st = b.status(check=False)
            if st and st["used_pages"] == 0:
                seen["emptied"] = True
                return
            time.sleep(0.3)
    except Exception as exc:  # noqa: BLE001 -- reported by the test
        errors.append(repr(exc))


def boot_while_draining(server, pages, boot):
    """boot() (a mini-VM run) while drain_when_holding(server, pages) watches beside it:
    returns (boot()'s result, what the drain saw); the drain's errors fail the test."""
    seen, errors = {}, []
    thread = threading.Thread(
        target=drain_when_holding, args=(server, pages, seen, errors), daemon=True
    )
    thread.start()
    try:
        result = boot()
    finally:
        seen["stop"] = True
        thread.join(timeout=30)
    assert not errors, errors
    return result, seen


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_a_server_drained_while_a_workload_swaps_loses_nothing(kit, nswap_ko, nswapd_bin, workload):
    """The issue's drain test: a W1 run swaps to B and C (gossiping, migration on); B is
    drained mid-run (SET_CACHE_LIMIT 0); its pages move to C, whose UPDATEs the client
    follows while it keeps swapping; every byte verifies and B ends holding no page."""
    size = ["--cache-size", "256M"]
    with gossiping_b_and_c(nswapd_bin, size, size) as (b, c):
        b_port, c_port = b.port, c.port
        result, seen = boot_while_draining(
            b,
            2000,
            lambda: boot_user_net(
                kit,
                nswap_ko,
                GUEST_DRAIN % dict(host=HOST, b=b_port, c=c_port),
                files={"/bin/nswap-workload": WORKLOAD},
                memory_mib=VM_MEMORY_MIB,
            ),
        )
        b_status, c_status = b.status(), c.status()
        b_log = b.log_text()
    counters, values, runs = passed(result)
    assert values["workload_exit"] == 0, result.output[-3000:]
    assert [r["mismatched_pages"] for r in runs] == [0], runs
    assert counters["lost_pages"] == 0 and counters["errors"] == 0, counters
    # B was drained while it held pages; they moved (the client followed) and B emptied
    assert seen.get("drained_from", 0) >= 2000 and seen.get("emptied"), (seen, b_log[-3000:])
    assert counters["migrations"] > 0 and counters["updates_refused"] == 0, counters
    assert b_status["used_pages"] == 0 and b_status["limit_pages"] == 0, b_status
    assert c_status["gets"] > 0, c_status  # swapoff read the moved pages from C
    pages = dict(re.findall(r"^server \S+:(\d+) \S+ pages=(\d+)", result.output, re.M))
    assert int(pages[str(b_port)]) == 0, pages
    assert "drain: done, no page is held here" in b_log
    assert "UNLOADED clean" in result.output
