"""nswapd as the receiving server of a page migration (docs/protocol.md 11.1): PUNTPAGE from
another server stores the page under its owner's client_id, and the owner hears UPDATE on
its own connection.  Python clients on loopback play the owner (A) and the punting server (B).
"""

import contextlib
import json
import random
import re
import signal
import socket
import struct
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import nswapd
from tests.integration.test_nswapd_gossip import free_tcp_port, free_udp_port

MIGRATION = proto.FEAT_RANGE_INVALIDATE | proto.FEAT_MIGRATION
OWNER, SERVER_B = 0xA0A0, 0xB0B0


def page(slot, generation):
    return random.Random("punt/%d/%d" % (slot, generation)).randbytes(proto.PAGE_SIZE)


def punt(b, slot, generation, hop_count, client_id=OWNER, data=None):
    """PUNTPAGE of the owner's page from B; returns the reply status."""
    frame = b.request(
        proto.PUNTPAGE,
        page(slot, generation) if data is None else data,
        client_id=client_id,
        slot=slot,
        generation=generation,
        hop_count=hop_count,
    )
    return frame.status


def next_update(a, timeout=5.0):
    a.settimeout(timeout)
    frame = a.recv()
    assert frame.type == proto.UPDATE, frame
    return (frame.client_id, frame.slot, frame.generation, frame.hop_count, frame.length)


def owner_hello(c, name, features=MIGRATION):
    """HELLO as the owner, then a first request, as nswap.ko's purge: nswapd sends UPDATEs
    only on connections whose first request past HELLO is answered (request_answered)."""
    reply = c.hello(OWNER, name, features=features)
    c.status()
    return reply


@pytest.fixture
def pair(start_server):
    """(server, owner A, server B), both said HELLO with migration."""
    srv = start_server("--cache-size", "64K")  # 16 pages
    with srv.client() as a, srv.client() as b:
        assert owner_hello(a, "owner").features & proto.FEAT_MIGRATION
        b.hello(SERVER_B, "server-b", features=MIGRATION)
        yield srv, a, b


def test_a_punted_page_is_stored_for_its_owner_who_hears_where(pair):
    srv, a, b = pair
    assert punt(b, 5, 7, 1) == proto.OK
    assert next_update(a) == (OWNER, 5, 7, 1, 0)
    assert a.get(5, 7) == (proto.OK, page(5, 7))
    # the owner's later write of the slot wins over an older punt arriving late
    assert a.put(5, 9, page(5, 9)) == proto.OK
    assert punt(b, 5, 8, 2) == proto.ESTALE
    assert a.get(5, 9) == (proto.OK, page(5, 9))
    # same generation, a later hop replaces; an earlier hop is stale
    assert punt(b, 6, 3, 2) == proto.OK
    assert next_update(a) == (OWNER, 6, 3, 2, 0)
    assert punt(b, 6, 3, 1) == proto.ESTALE
    assert punt(b, 6, 3, 3) == proto.OK
    assert next_update(a) == (OWNER, 6, 3, 3, 0)
    st = srv.status()
    assert st["used_pages"] == 2
    assert srv.log_text().count("protocol violation") == 0


def test_a_punt_for_an_owner_not_connected_with_migration_is_refused(start_server):
    """The owner would never hear of the page (UPDATE): it would read the sender's copy
    forever and this one would be an orphan.  Refused (ENOENT), nothing stored, nobody
    told; the sender moves other owners' pages."""
    srv = start_server("--cache-size", "64K")
    with srv.client() as plain, srv.client() as other, srv.client() as b:
        plain.hello(OWNER, "plain")  # no FEAT_MIGRATION
        other.hello(0xC0C0, "other", features=MIGRATION)
        other.status()  # a first request: UPDATEs may come from now on
        b.hello(SERVER_B, "server-b", features=MIGRATION)
        assert punt(b, 1, 1, 1) == proto.ENOENT
        assert punt(b, 2, 1, 1, client_id=0xE0E0) == proto.ENOENT  # not connected at all
        for c in (plain, other):
            c.settimeout(1.0)
            with pytest.raises(socket.timeout):
                c.recv()
        assert plain.get(1, 1)[0] == proto.ENOENT
        assert srv.status()["used_pages"] == 0
        assert punt(b, 3, 1, 1, client_id=0xC0C0) == proto.OK  # one that follows
        assert next_update(other) == (0xC0C0, 3, 1, 1, 0)


def test_a_full_cache_refuses_a_punted_page_and_tells_nobody(pair):
    srv, a, b = pair
    for s in range(16):
        assert a.put(100 + s, 1, page(100 + s, 1)) == proto.OK
    assert punt(b, 1, 1, 1) == proto.ENOSPC
    a.settimeout(1.0)
    with pytest.raises(socket.timeout):
        a.recv()
    assert a.get(1, 1)[0] == proto.ENOENT


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (dict(hop_count=0), "PUNTPAGE hop_count 0, must be 1-15"),
        (dict(hop_count=16), "PUNTPAGE hop_count 16, must be 1-15"),
        (dict(hop_count=1, payload=b"short"), "PUNTPAGE length 5, must be 4096"),
        (dict(hop_count=1, flags=proto.F_NOREPLY), "flags 0x0002 not valid for PUNTPAGE"),
    ],
)
def test_malformed_punts_are_protocol_violations(start_server, fields, reason):
    srv = start_server("--cache-size", "64K")
    with srv.client() as b:
        b.hello(SERVER_B, "server-b", features=MIGRATION)
        payload = fields.pop("payload", page(1, 1))
        b.send(proto.PUNTPAGE, payload, client_id=OWNER, slot=1, generation=1, **fields)
        frame = b.recv()
        assert frame.status == proto.EPROTO
    assert srv.wait_log(r"protocol violation: " + reason)
    assert srv.status()["used_pages"] == 0


def test_a_punt_with_a_damaged_page_is_refused_and_stores_nothing(pair):
    srv, a, b = pair
    data = bytearray(page(2, 1))
    tag = b.send(proto.PUNTPAGE, bytes(data), client_id=OWNER, slot=2, generation=1, hop_count=1)
    assert b.wait([tag])[tag].status == proto.OK
    assert next_update(a) == (OWNER, 2, 1, 1, 0)
    frame = proto.encode_frame(
        proto.PUNTPAGE,
        bytes(data),
        crc=proto.crc32c(bytes(data)) ^ 1,
        tag=99,
        client_id=OWNER,
        slot=3,
        generation=1,
        hop_count=1,
        version=1,
    )
    b.send_raw(frame)
    assert b.wait([99])[99].status == proto.EBADCRC
    assert a.get(3, 1)[0] == proto.ENOENT


def test_invalidate_with_f_hop_keeps_a_copy_that_moved_further(pair):
    srv, a, b = pair
    # B's page came back to it after a move: same generation, hop 2
    assert punt(b, 5, 5, 2) == proto.OK
    next_update(a)

    def invalidate(slot, generation, hop, count=None):
        flags = proto.F_HOP | (proto.F_RANGE if count is not None else 0)
        payload = b"" if count is None else struct.pack("<Q", count)
        return a.request(
            proto.INVALIDATE, payload, slot=slot, generation=generation, hop_count=hop, flags=flags
        ).status

    # the late INVALIDATE of the copy that left (hop 0, then hop 1): kept
    assert invalidate(5, 5, 0) == proto.OK
    assert invalidate(0, 5, 1, count=16) == proto.OK
    assert a.get(5, 5) == (proto.OK, page(5, 5))
    # its own hop: dropped; and without F_HOP generations alone decide, as before
    assert invalidate(5, 5, 2) == proto.OK
    assert a.get(5, 5)[0] == proto.ENOENT
    assert punt(b, 6, 5, 3) == proto.OK
    next_update(a)
    assert a.invalidate(6, 5) == proto.OK
    assert a.get(6, 5)[0] == proto.ENOENT


def test_f_hop_needs_migration(start_server):
    srv = start_server("--cache-size", "64K")
    with srv.client() as a:
        a.hello(OWNER, "plain")
        a.send(proto.INVALIDATE, slot=1, generation=1, hop_count=0, flags=proto.F_HOP)
        assert a.recv().status == proto.EPROTO
    assert srv.wait_log(r"protocol violation: NSWAP_F_HOP without negotiated NSWAP_FEAT_MIGRATION")


def test_a_sweep_drops_only_written_copies_up_to_its_generation(start_server):
    """NSWAP_F_SWEEP (a client's dead-page sweep): a range INVALIDATE that drops the copies
    a PUTPAGE stored (hop 0) of at most its generation, and keeps moved ones (hop >= 1) and
    newer ones; it needs NSWAP_FEAT_SWEEP, and never goes with NSWAP_F_HOP."""
    srv = start_server("--cache-size", "64K")  # 16 pages
    sweep = MIGRATION | proto.FEAT_SWEEP
    with srv.client() as a, srv.client() as b:
        assert a.hello(OWNER, "owner", features=sweep).features & proto.FEAT_SWEEP
        b.hello(SERVER_B, "server-b", features=MIGRATION)
        for s in range(4):
            assert a.put(s, 10 + s, page(s, 10 + s)) == proto.OK  # generations 10-13
        assert punt(b, 4, 5, 1) == proto.OK  # a moved copy, old generation
        next_update(a)
        frame = a.request(
            proto.INVALIDATE, struct.pack("<Q", 8), slot=0, generation=11,
            flags=proto.F_SWEEP | proto.F_RANGE,
        )  # fmt: skip
        assert frame.status == proto.OK
        assert [a.get(s, 10 + s)[0] for s in range(4)] == [proto.ENOENT] * 2 + [proto.OK] * 2
        assert a.get(4, 5) == (proto.OK, page(4, 5))
        assert srv.status()["used_pages"] == 3
        a.send(
            proto.INVALIDATE, slot=2, generation=20, hop_count=0, flags=proto.F_SWEEP | proto.F_HOP
        )
        assert a.recv().status == proto.EPROTO
    with srv.client() as plain:
        plain.hello(OWNER, "plain", features=MIGRATION)
        plain.send(proto.INVALIDATE, slot=2, generation=20, flags=proto.F_SWEEP)
        assert plain.recv().status == proto.EPROTO
    assert srv.wait_log(r"protocol violation: NSWAP_F_SWEEP and NSWAP_F_HOP together")
    assert srv.wait_log(r"protocol violation: NSWAP_F_SWEEP without negotiated NSWAP_FEAT_SWEEP")


# --- the sending server: a shrunk elastic cache moves its pages (punt.c) ---------------


@contextlib.contextmanager
def servers_b_and_c(nswapd_bin, b_args, c_args):
    """nswapd B on 127.0.0.2 and C on 127.0.0.3, gossiping (each the other's seed), and the
    owner's migration connections to both: yields (B, C, owner to B, owner to C)."""
    b_addr, c_addr = "127.0.0.2", "127.0.0.3"
    gossip = ["--gossip", "on", "--gossip-interval", 50]
    gossip += ["--gossip-port", free_udp_port([b_addr, c_addr])]
    with (
        nswapd.running(
            nswapd_bin, *gossip, "--gossip-seeds", c_addr, *b_args,
            listen="%s:%d" % (b_addr, free_tcp_port(b_addr)),
        ) as b_srv,
        nswapd.running(
            nswapd_bin, *gossip, "--gossip-seeds", b_addr, *c_args,
            listen="%s:%d" % (c_addr, free_tcp_port(c_addr)),
        ) as c_srv,
        b_srv.client() as to_b,
        c_srv.client() as to_c,
    ):  # fmt: skip
        owner_hello(to_b, "owner")
        owner_hello(to_c, "owner")
        yield b_srv, c_srv, to_b, to_c


def test_a_squeezed_server_moves_its_pages_and_the_owner_follows(nswapd_bin, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable:    1048576 kB\n")
    pages = 200
    elastic = [
        "--cache-size", "1M", "--elastic", "on", "--elastic-step", "1M",
        "--elastic-reserve", "64M", "--elastic-interval", 50, "--meminfo-file", meminfo,
        "--pressure-file", "", "--node-id", "0xb",
    ]  # fmt: skip
    c_args = ["--cache-size", "4M", "--node-id", "0xc"]
    with servers_b_and_c(nswapd_bin, elastic, c_args) as (b_srv, c_srv, to_b, to_c):
        assert b_srv.wait_log(r"elastic: cache limit 256 -> 256|cache limit starts at 256")
        for s in range(pages):
            assert to_b.put(s, 10 + s, page(s, 10 + s)) == proto.OK
        # B's node runs short: its limit drops under its use, and the pages go to C
        tmp = tmp_path / "meminfo.tmp"
        tmp.write_text("MemAvailable:    1024 kB\n")
        tmp.replace(meminfo)
        # (all but one: the limit does not go below one page)
        moved = {}
        while len(moved) < pages - 1:
            cid, slot, generation, hop, length = next_update(to_c, timeout=20)
            assert (cid, generation, hop, length) == (OWNER, 10 + slot, 1, 0)
            moved[slot] = generation
        # not one more: the page the limit keeps stays (the mover counts before each page)
        to_c.settimeout(1.0)
        with pytest.raises(socket.timeout):
            to_c.recv()
        # the owner reads them at C, and drops B's copies as nswap.ko does (NSWAP_F_HOP)
        for s in moved:
            assert to_c.get(s, 10 + s) == (proto.OK, page(s, 10 + s))
            frame = to_b.request(
                proto.INVALIDATE, slot=s, generation=10 + s, hop_count=0, flags=proto.F_HOP
            )
            assert frame.status == proto.OK
        (kept,) = set(range(pages)) - set(moved)
        assert to_b.get(kept, 10 + kept) == (proto.OK, page(kept, 10 + kept))
        assert to_b.status().used_pages == 1
        assert c_srv.status()["used_pages"] == pages - 1
    log = b_srv.log_text()
    assert re.search(r"migration: moved \d+ pages to 127\.0\.0\.3:\d+", log), log[-3000:]
    assert "stopped taking pages" not in log


def test_a_limit_lowered_by_hand_moves_the_pages_over_it(nswapd_bin):
    """SET_CACHE_LIMIT (the nswap_server module's cache_limit) below the use of a server
    with gossip on: the pages over it move, elastic or not (a drain by hand)."""
    one_mib = ["--cache-size", "1M"]
    with servers_b_and_c(nswapd_bin, one_mib, one_mib) as (b_srv, c_srv, to_b, to_c):
        for s in range(50):
            assert to_b.put(s, 1, page(s, 1)) == proto.OK
        with b_srv.client() as ctl:  # a control connection: no HELLO
            status, st = ctl.set_cache_limit(10)
        assert status == proto.OK and st.used_pages == 50
        moved = {next_update(to_c, timeout=20)[1] for _ in range(40)}
        assert len(moved) == 40
        for s in moved:
            assert to_c.get(s, 1) == (proto.OK, page(s, 1))
    assert re.search(r"migration: moved 40 pages to 127\.0\.0\.3:\d+", b_srv.log_text())


def test_a_drain_moves_every_page_away_and_ends_with_a_limit_above_zero(nswapd_bin, tmp_path):
    """SET_CACHE_LIMIT 0 (nswap_server state=drained): B takes no new page and moves every
    page to C, also with elastic on (which must not raise the limit meanwhile); STATUS says
    draining; B holds none once the owner dropped its copies; a limit above 0 ends it."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable:    1048576 kB\n")
    pages = 60
    elastic = [
        "--cache-size", "1M", "--elastic", "on", "--elastic-step", "1M",
        "--elastic-reserve", "64M", "--elastic-interval", 50, "--meminfo-file", meminfo,
        "--pressure-file", "",
    ]  # fmt: skip
    with servers_b_and_c(nswapd_bin, elastic, ["--cache-size", "1M"]) as (b_srv, c_srv, to_b, to_c):
        for s in range(pages):
            assert to_b.put(s, 5, page(s, 5)) == proto.OK
        with b_srv.client() as ctl:
            status, st = ctl.set_cache_limit(0)
        assert status == proto.OK and (st.limit_pages, st.used_pages) == (0, pages)
        assert st.state_flags == proto.STATE_OVER_LIMIT | proto.STATE_DRAINING
        assert to_b.put(pages, 5, page(pages, 5)) == proto.ENOSPC  # no new page
        moved = set()
        while len(moved) < pages:
            cid, slot, generation, hop, _ = next_update(to_c, timeout=20)
            assert (cid, generation, hop) == (OWNER, 5, 1)
            moved.add(slot)
        assert b_srv.status()["used_pages"] == pages  # the copies wait for the owner
        for s in sorted(moved):
            assert to_c.get(s, 5) == (proto.OK, page(s, 5))
            frame = to_b.request(
                proto.INVALIDATE, slot=s, generation=5, hop_count=0, flags=proto.F_HOP
            )
            assert frame.status == proto.OK
        st = to_b.status()
        assert (st.used_pages, st.limit_pages) == (0, 0)
        assert b_srv.wait_log(r"drain: done, no page is held here", timeout=10)
        # elastic ticks (memory is plentiful) left the limit at 0 throughout
        assert to_b.status().limit_pages == 0 and st.state_flags == proto.STATE_DRAINING
        # the end of the drain, elastic on: allowed, from the limit given
        with b_srv.client() as ctl:
            status, st = ctl.set_cache_limit(128)
        assert status == proto.OK and st.state_flags == 0 and st.limit_pages == 128
        assert to_b.put(pages, 6, page(pages, 6)) == proto.OK
        with b_srv.client() as ctl:  # elastic on: a limit by hand is refused again
            assert ctl.set_cache_limit(100)[0] == proto.EINVAL
    log = b_srv.log_text()
    assert re.search(r"drain: cache limit \d+ -> 0 pages, %d held; they move" % pages, log), log
    assert re.search(r"drain ended: cache limit 0 -> 128 pages", log), log


def test_only_pages_of_clients_that_follow_moves_are_moved(nswapd_bin):
    """A drain moves the pages of an owner that negotiated migration with B, not those of
    one that did not (it would never hear where they went: they would be orphans on C,
    and it reads them from B anyway); those stay, said once in the log."""
    one_mib = ["--cache-size", "1M"]
    plain_id = 0xD0D0
    with servers_b_and_c(nswapd_bin, one_mib, one_mib) as (b_srv, c_srv, to_b, to_c):
        with b_srv.client() as plain:
            plain.hello(plain_id, "plain")  # no FEAT_MIGRATION
            for s in range(10):
                assert to_b.put(s, 1, page(s, 1)) == proto.OK
                assert plain.put(s, 1, page(s, 1)) == proto.OK
            with b_srv.client() as ctl:
                assert ctl.set_cache_limit(0)[0] == proto.OK
            moved = {next_update(to_c, timeout=20)[1] for _ in range(10)}
            assert moved == set(range(10))
            for s in moved:  # the owner that follows drops B's copies
                frame = to_b.request(
                    proto.INVALIDATE, slot=s, generation=1, hop_count=0, flags=proto.F_HOP
                )
                assert frame.status == proto.OK
            assert b_srv.wait_log(r"pages over the limit cannot move: their owners do not follow")
            assert b_srv.status()["used_pages"] == 10  # the plain client's, still readable
            assert plain.get(3, 1) == (proto.OK, page(3, 1))
            assert c_srv.status()["used_pages"] == 10  # no orphan of the plain client's
        # the plain client gone (its connections closed), nothing changes by itself
        assert b_srv.status()["used_pages"] == 10


def test_an_owner_that_does_not_follow_at_the_target_keeps_its_pages_here(nswapd_bin):
    """The owner follows moves at B but is not connected to C with migration: C refuses
    its pages (ENOENT), B keeps them and moves the other owner's; no orphan on C."""
    one_mib = ["--cache-size", "1M"]
    half_id = 0xF0F0
    with servers_b_and_c(nswapd_bin, one_mib, one_mib) as (b_srv, c_srv, to_b, to_c):
        with b_srv.client() as half:
            half.hello(half_id, "half", features=MIGRATION)
            for s in range(5):
                assert half.put(s, 1, page(s, 1)) == proto.OK
                assert to_b.put(s, 1, page(s, 1)) == proto.OK
            with b_srv.client() as ctl:
                assert ctl.set_cache_limit(0)[0] == proto.OK
            moved = {next_update(to_c, timeout=20)[1] for _ in range(5)}
            assert moved == set(range(5))
            time.sleep(1)  # more rounds: still refused, never stored
            assert c_srv.status()["used_pages"] == 5
            assert half.get(2, 1) == (proto.OK, page(2, 1))
    assert "stopped taking pages" not in b_srv.log_text()  # an ENOENT ends no round


def test_a_target_that_stops_answering_mid_drain_costs_no_page(nswapd_bin):
    """B drains into C, and C stops (SIGSTOP) once it took a page, then dies: B's mover
    gives up on C within its I/O timeout, B keeps answering, and every page is still
    readable at B (B drops a copy only when its owner says so), including those C took
    before it stopped; B still stops cleanly.  16,000 pages: the mover sends 32 at a time, and
    2,000 could all be moved before the SIGSTOP landed on a loaded host."""
    size = ["--cache-size", "64M"]
    pages = 16000
    with servers_b_and_c(nswapd_bin, size, size) as (b_srv, c_srv, to_b, to_c):
        for s in range(pages):
            assert to_b.put(s, 3, page(s, 3)) == proto.OK
        with b_srv.client() as ctl:
            assert ctl.set_cache_limit(0)[0] == proto.OK
        next_update(to_c, timeout=20)
        c_srv.signal(signal.SIGSTOP)
        try:
            # B gives up on C in the round that was under way (the log gives that round's
            # count), or, when the stop landed between two rounds, at the next round's HELLO
            gave_up = b_srv.wait_log(
                r"stopped taking pages \(connection lost\) after (\d+)"
                r"|cannot move pages to \S+ \(connect or HELLO with migration failed\)",
                30,
            )
            assert gave_up, b_srv.log_text()[-3000:]
            lost_round = int(gave_up.group(1) or 0)
            # C took a page (its UPDATE above) and B stopped before the end: mid-drain.
            # An earlier round may have ended well, and C may have sent its UPDATE before
            # its reply to B, so the whole drain is judged by B's counter of pages moved.
            st = b_srv.status()
            assert lost_round <= st["punts_sent"] < pages
            assert (st["used_pages"], st["limit_pages"]) == (pages, 0)
        finally:
            c_srv.kill()
        for s in range(pages):
            assert to_b.get(s, 3) == (proto.OK, page(s, 3)), s
        assert b_srv.status()["used_pages"] == pages


# --- a full cache still takes a page, and moves it (overflow, docs/protocol.md 10) -----

SIXTEEN_PAGES = ["--cache-size", "64K"]
OVERFLOW_16 = SIXTEEN_PAGES + ["--overflow", "64K"]


def put_once_taken(to_b, slot, generation, timeout=10.0):
    """PUTPAGE that B refuses (ENOSPC) until its gossip table knows a member with room;
    the first OK, or the test fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = to_b.put(slot, generation, page(slot, generation))
        if status == proto.OK:
            return
        assert status == proto.ENOSPC, status
        time.sleep(0.05)
    pytest.fail("B never took a page over its limit in %g s" % timeout)


def test_a_full_cache_takes_a_followers_page_and_moves_it_where_there_is_room(nswapd_bin):
    """B (16 pages, overflow 16) is full; its owner follows moves and C has room: B still
    takes new pages, at most 16 over its limit, and moves the pages over the limit to C
    at once; the owner hears where each went, and once it dropped B's copies B holds its
    limit again.  Every byte is read back from where the owner now looks."""
    c_args = ["--cache-size", "1M"]
    with servers_b_and_c(nswapd_bin, OVERFLOW_16, c_args) as (b_srv, c_srv, to_b, to_c):
        for s in range(16):
            assert to_b.put(s, 1, page(s, 1)) == proto.OK
        put_once_taken(to_b, 16, 1)
        for s in range(17, 32):
            assert to_b.put(s, 1, page(s, 1)) == proto.OK
        # the overflow is bounded: limit + 16, whatever C has free
        assert to_b.put(32, 1, page(32, 1)) == proto.ENOSPC
        moved = set()
        while len(moved) < 16:
            cid, slot, generation, hop, length = next_update(to_c, timeout=20)
            assert (cid, generation, hop, length) == (OWNER, 1, 1, 0)
            moved.add(slot)
        to_c.settimeout(1.0)
        with pytest.raises(socket.timeout):  # only the pages over the limit move
            to_c.recv()
        for s in range(32):
            if s in moved:
                assert to_c.get(s, 1) == (proto.OK, page(s, 1)), s
                frame = to_b.request(
                    proto.INVALIDATE, slot=s, generation=1, hop_count=0, flags=proto.F_HOP
                )
                assert frame.status == proto.OK
            else:
                assert to_b.get(s, 1) == (proto.OK, page(s, 1)), s
        st = to_b.status()
        assert (st.used_pages, st.limit_pages, st.capacity_pages) == (16, 16, 16)
        assert (st.overflows, st.punts_sent, st.punts_received) == (16, 16, 0)
        c_st = c_srv.status()
        assert c_st["used_pages"] == 16
        assert (c_st["punts_received"], c_st["updates_sent"], c_st["overflows"]) == (16, 16, 0)
        assert to_b.put(33, 1, page(33, 1)) == proto.OK  # room for overflow again
    log = b_srv.log_text()
    assert re.search(r"migration: moved \d+ pages to 127\.0\.0\.3:\d+", log), log[-3000:]
    assert "overflow 16 pages" in log


def knows_a_member_with_room(table_file, timeout=10.0):
    """Wait until the gossip table nswapd writes lists an ALIVE member with free pages."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(table_file) as handle:
                members = json.load(handle)["members"]
        except (OSError, ValueError, KeyError):
            members = []
        if any(m["state"] == "alive" and m["free"] > 0 for m in members):
            return
        time.sleep(0.05)
    pytest.fail("no member with room in %s after %g s" % (table_file, timeout))


def test_overflow_is_refused_to_an_owner_that_does_not_follow(nswapd_bin):
    """A client without migration would never hear where its page went: at the limit it
    gets ENOSPC as before, while B takes a follower's page over the limit."""
    with servers_b_and_c(nswapd_bin, OVERFLOW_16, ["--cache-size", "1M"]) as (
        b_srv,
        _c_srv,
        to_b,
        _to_c,
    ):
        with b_srv.client() as plain:
            plain.hello(0xD0D0, "plain")  # no FEAT_MIGRATION
            for s in range(16):
                assert plain.put(s, 1, page(s, 1)) == proto.OK
            put_once_taken(to_b, 100, 1)  # the follower is taken: B knows C has room
            assert plain.put(16, 1, page(16, 1)) == proto.ENOSPC
        assert b_srv.status()["used_pages"] == 17


def test_a_draining_server_takes_no_page_overflow_or_not(nswapd_bin, tmp_path):
    """SET_CACHE_LIMIT 0 with 2 pages held, overflow 16 and a member with room: the next
    PUTPAGE of a follower is refused at once (not only after the next gossip round)."""
    table = tmp_path / "b.json"
    b_args = OVERFLOW_16 + ["--gossip-table-file", table]
    with servers_b_and_c(nswapd_bin, b_args, ["--cache-size", "1M"]) as (b_srv, _c, to_b, _to_c):
        for s in range(2):
            assert to_b.put(s, 1, page(s, 1)) == proto.OK
        knows_a_member_with_room(table)
        time.sleep(0.2)  # a few more rounds: the overflow allowance is set
        with b_srv.client() as ctl:
            assert ctl.set_cache_limit(0)[0] == proto.OK
        assert to_b.put(2, 1, page(2, 1)) == proto.ENOSPC
        assert b_srv.status()["used_pages"] == 2


def test_a_full_cache_without_a_member_with_room_refuses_as_before(nswapd_bin):
    """C lends nothing (cache_size 0): nowhere to move a page to, so B at its limit
    answers ENOSPC to its follower, however many rounds pass, and holds its limit."""
    c_args = ["--cache-size", "0"]
    with servers_b_and_c(nswapd_bin, OVERFLOW_16, c_args) as (b_srv, _c_srv, to_b, _to_c):
        for s in range(16):
            assert to_b.put(s, 1, page(s, 1)) == proto.OK
        for s in range(16, 26):  # 10 x 100 ms: 20 gossip rounds
            assert to_b.put(s, 1, page(s, 1)) == proto.ENOSPC
            time.sleep(0.1)
        assert b_srv.status()["used_pages"] == 16


def test_a_server_stopping_on_sigterm_takes_no_overflow(nswapd_bin):
    """SIGTERM starts nswapd's drain and its leave from the gossip: no gossip round runs
    after that, so the overflow armed by the last one must end at once."""
    with servers_b_and_c(nswapd_bin, OVERFLOW_16, ["--cache-size", "1M"]) as (
        b_srv,
        _c,
        to_b,
        _to_c,
    ):
        for s in range(16):
            assert to_b.put(s, 1, page(s, 1)) == proto.OK
        put_once_taken(to_b, 16, 1)  # overflow is armed
        b_srv.signal(signal.SIGTERM)
        assert b_srv.wait_log(r"SIGTERM: draining")
        statuses = {to_b.put(s, 1, page(s, 1)) for s in range(17, 27)}
        assert proto.OK not in statuses, statuses


def test_overflow_ends_when_the_target_refuses_the_owners_pages(nswapd_bin):
    """The owner follows moves at B but has no connection to C, so C refuses its pages
    (ENOENT) and they cannot leave B: after that round B takes no more overflow, says why
    once, and keeps every page readable."""
    with servers_b_and_c(nswapd_bin, OVERFLOW_16, ["--cache-size", "1M"]) as (b_srv, _c, _b, _c2):
        with b_srv.client() as lone:
            lone.hello(0xE1E1, "lone", features=MIGRATION)  # at B only
            for s in range(16):
                assert lone.put(s, 1, page(s, 1)) == proto.OK
            put_once_taken(lone, 16, 1)
            assert b_srv.wait_log(r"took none of the pages over the limit: their 1 owner", 10)
            time.sleep(0.2)  # a few rounds: the overflow is disarmed
            taken = b_srv.status()["used_pages"]
            assert 16 < taken <= 32
            assert {lone.put(100 + s, 1, page(100 + s, 1)) for s in range(5)} == {proto.ENOSPC}
            for s in range(17):
                assert lone.get(s, 1) == (proto.OK, page(s, 1)), s


def test_an_elastic_server_short_of_memory_takes_no_overflow(nswapd_bin, tmp_path):
    """Elastic B's node runs short of memory: its limit drops under its use and its pages
    move to C; while it is squeezed it takes no overflow, although C has room."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable:    1048576 kB\n")
    elastic = [
        "--cache-size", "1M", "--elastic", "on", "--elastic-step", "1M",
        "--elastic-reserve", "64M", "--elastic-interval", 50, "--meminfo-file", meminfo,
        "--pressure-file", "", "--overflow", "64K",
    ]  # fmt: skip
    with servers_b_and_c(nswapd_bin, elastic, ["--cache-size", "4M"]) as (b_srv, _c, to_b, to_c):
        assert b_srv.wait_log(r"cache limit starts at 256")
        for s in range(10):
            assert to_b.put(s, 1, page(s, 1)) == proto.OK
        tmp = tmp_path / "meminfo.tmp"
        tmp.write_text("MemAvailable:    1024 kB\n")
        tmp.replace(meminfo)
        assert b_srv.wait_log(r"elastic: cache limit 256 -> 1 pages")
        next_update(to_c, timeout=20)  # the pages move: C has room, the mover works
        time.sleep(0.3)  # several gossip rounds while squeezed
        assert {to_b.put(100 + s, 1, page(100 + s, 1)) for s in range(5)} == {proto.ENOSPC}


def test_a_target_that_fills_mid_window_gets_only_what_it_took_marked(nswapd_bin):
    """B sends up to 32 PUNTPAGEs before it reads the first reply.  C has room for 16: it
    takes 16 and refuses the rest (ENOSPC).  B reads every reply: exactly the 16 taken are
    on their way (their owner hears 16 UPDATEs), B still serves all 50, and the pages C
    refused move once C has room again."""
    pages = 50
    with servers_b_and_c(nswapd_bin, ["--cache-size", "1M"], SIXTEEN_PAGES) as (
        b_srv,
        c_srv,
        to_b,
        to_c,
    ):
        for s in range(pages):
            assert to_b.put(s, 1, page(s, 1)) == proto.OK
        with b_srv.client() as ctl:
            assert ctl.set_cache_limit(0)[0] == proto.OK
        moved = {next_update(to_c, timeout=20)[1] for _ in range(16)}
        assert len(moved) == 16
        assert b_srv.wait_log(r"stopped taking pages \(refused\) after 16", 10)
        to_c.settimeout(1.0)
        with pytest.raises(socket.timeout):
            to_c.recv()
        for s in range(pages):
            assert to_b.get(s, 1) == (proto.OK, page(s, 1)), s
        assert c_srv.status()["used_pages"] == 16
        assert b_srv.status()["punts_sent"] == 16
        # C empties (the owner drops those copies there): the rest follows
        for s in moved:
            assert to_c.request(proto.INVALIDATE, slot=s, generation=1).status == proto.OK
            assert (
                to_b.request(
                    proto.INVALIDATE, slot=s, generation=1, hop_count=0, flags=proto.F_HOP
                ).status
                == proto.OK
            )
        later = {next_update(to_c, timeout=20)[1] for _ in range(16)}
        assert not later & moved
