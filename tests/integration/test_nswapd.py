"""nswapd against the Python codec, over loopback only.

nswapd is built once per session (harness/nswapd.py: ``make -C src/nswapd``); set
NSWAPD_BIN to test another binary (e.g. a sanitizer build).  Every server listens on
127.0.0.1 with an ephemeral port that it reports on stderr; every loop here is
bounded in count and time.
"""

import json
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import netns, nobody, nswapd

REPO = Path(__file__).resolve().parents[2]
PAGE = proto.PAGE_SIZE
IO_TIMEOUT = 10.0


# --- helpers -------------------------------------------------------------------


def page(client_id, slot, generation=1):
    """Deterministic page content, distinct for every (client, slot, generation)."""
    return random.Random("%d/%d/%d" % (client_id, slot, generation)).randbytes(PAGE)


_crc_cache = {}


def put_frame(client_id, slot, generation, data, tag, crc=None, **fields):
    """A PUTPAGE frame, caching page checksums (pure-Python crc32c is slow).

    ``crc`` overrides the payload checksum, to send a damaged page.
    """
    if crc is None:
        key = hash(data)
        crc = _crc_cache.get(key)
        if crc is None:
            crc = _crc_cache[key] = proto.crc32c(data)
    fields.setdefault("version", proto.PROTO_VERSION)
    return proto.encode_frame(
        proto.PUTPAGE,
        data,
        crc=crc,
        tag=tag,
        client_id=client_id,
        slot=slot,
        generation=generation,
        **fields,
    )


def hello_frame(client_id, tag=1, features=proto.FEAT_RANGE_INVALIDATE, name="test"):
    return proto.encode_frame(
        proto.HELLO,
        proto.encode_hello(1, 1, features, 0, name),
        tag=tag,
        client_id=client_id,
    )


def read_until_closed(sock, timeout=IO_TIMEOUT, limit=1 << 26):
    """All bytes until EOF or reset; fails the test if the peer keeps it open."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    sock.settimeout(0.2)
    while len(data) < limit:
        if time.monotonic() > deadline:
            pytest.fail("connection not closed within %.0f s" % timeout)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data.extend(chunk)
    return bytes(data)


def split_frames(data):
    frames = []
    while data:
        frame, used = proto.decode_frame(data)
        frames.append(frame)
        data = data[used:]
    return frames


def pump(sock, data, timeout=IO_TIMEOUT, stall=None):
    """Send ``data`` while draining replies.  Returns (bytes sent, bytes received).

    Stops early when the peer closes, or (with ``stall``) when nothing could be
    sent for ``stall`` seconds.  Never blocks longer than ``timeout``.
    """
    received = bytearray()
    sent = 0
    deadline = time.monotonic() + timeout
    last_progress = time.monotonic()
    sock.setblocking(False)
    try:
        while sent < len(data):
            now = time.monotonic()
            if now > deadline or (stall and now - last_progress > stall):
                break
            r, w, _x = select.select([sock], [sock], [], 0.05)
            if r:
                try:
                    chunk = sock.recv(262144)
                except (ConnectionResetError, BlockingIOError):
                    chunk = b""
                if not chunk:
                    return sent, bytes(received)
                received.extend(chunk)
            if w:
                try:
                    n = sock.send(data[sent : sent + 262144])
                except BlockingIOError:
                    n = 0
                except (BrokenPipeError, ConnectionResetError):
                    return sent, bytes(received)
                if n:
                    sent += n
                    last_progress = time.monotonic()
    finally:
        sock.setblocking(True)
    return sent, bytes(received)


@pytest.fixture
def server(start_server):
    """A fresh server with a 4 MiB (1024-page) cache."""
    return start_server("--cache-size", "4M", "--name", "pytest-srv")


# --- basic operation -----------------------------------------------------------


def test_hello_put_get_invalidate_roundtrip(server):
    with server.client() as c:
        reply = c.hello(0x1234, "node-a", features=0xFF)
        assert reply.min_version == reply.max_version == 1 == c.version
        # the intersection
        assert reply.features == (
            proto.FEAT_RANGE_INVALIDATE
            | proto.FEAT_CACHE_LIMIT
            | proto.FEAT_MIGRATION
            | proto.FEAT_SWEEP
            | proto.FEAT_PUNTHOME
            | proto.FEAT_FREE_HINT
        )
        assert reply.capacity_pages == 1024
        assert reply.name == "pytest-srv"

        data = page(0x1234, 7)
        assert c.put(7, 1, data) == proto.OK
        status, got = c.get(7, 1)
        assert status == proto.OK and got == data

        # overwrite with a newer generation, byte-exact again; a PUTPAGE's copy is the
        # client's own write: stored with hop count 0
        newer = page(0x1234, 7, 2)
        assert c.put(7, 2, newer) == proto.OK
        tag = c.get_frame(7, 2)
        frame = c.wait([tag])[tag]
        assert frame.payload == newer
        assert (frame.hop_count, frame.generation, frame.slot) == (0, 2, 7)
        assert frame.type == proto.GETPAGE | proto.REPLY

        assert c.invalidate(7, 2) == proto.OK
        assert c.get(7, 2) == (proto.ENOENT, None)
        assert c.invalidate(7, 2) == proto.OK  # idempotent
        assert c.status().used_pages == 0


def test_reply_headers_echo_the_request(server):
    with server.client(0x99) as c:
        tag = c.put_frame(12345, 77, page(0x99, 12345, 77))
        frame = c.wait([tag])[tag]
        h = frame.header
        assert (h.type, h.tag, h.client_id, h.slot, h.generation, h.hop_count) == (
            proto.PUTPAGE | proto.REPLY,
            tag,
            0x99,
            12345,
            77,
            0,
        )
        assert (h.status, h.length, h.crc, h.reserved, h.version) == (0, 0, 0, 0, 1)
        # a refused one too: the reply carries the request's hop count back
        tag = c.put_frame(12345, 78, page(0x99, 12345, 78), hop_count=2)
        h = c.wait([tag])[tag].header
        assert (h.status, h.generation, h.hop_count, h.length) == (proto.EINVAL, 78, 2, 0)


def test_reserved_values_are_refused_and_change_nothing(server):
    """protocol.md 7: generation UINT64_MAX means "any" and names no page; a client's
    PUTPAGE and GETPAGE carry hop count 0; NSWAP_F_HOP's is at most 15.  Each is EINVAL
    (silent with NOREPLY), nothing changes, and the connection stays."""
    cid = 0x9A
    with server.client() as c:
        c.hello(cid, "reserved", features=proto.FEAT_RANGE_INVALIDATE | proto.FEAT_MIGRATION)
        assert c.put(1, 5, page(cid, 1, 5)) == proto.OK
        before = c.status()
        assert c.put(1, proto.GEN_ANY, page(cid, 1, 6)) == proto.EINVAL  # would never be ESTALE
        assert c.put(2, proto.GEN_ANY, page(cid, 2)) == proto.EINVAL
        assert c.put(1, 6, page(cid, 1, 6), hop_count=1) == proto.EINVAL
        assert c.put(3, 1, page(cid, 3), hop_count=15) == proto.EINVAL
        assert c.get(1, proto.GEN_ANY) == (proto.EINVAL, None)  # no generation leaked
        tag = c.get_frame(1, 5, hop_count=1)
        assert c.wait([tag])[tag].header.status == proto.EINVAL
        tag = c.send(proto.INVALIDATE, slot=1, generation=5, flags=proto.F_HOP, hop_count=16)
        assert c.wait([tag])[tag].header.status == proto.EINVAL
        c.send(proto.INVALIDATE, slot=1, generation=5, flags=proto.F_HOP | proto.F_NOREPLY,
               hop_count=200)  # fmt: skip
        # the stored page is untouched and the connection still serves
        assert c.get(1, 5) == (proto.OK, page(cid, 1, 5))
        after = c.status()
        assert after.used_pages == before.used_pages == 1
        assert after.errors - before.errors == 8, (before, after)
        assert c.invalidate(1, 5) == proto.OK and c.status().used_pages == 0


def test_range_invalidate(server):
    cid, other = 0x5000, 0x5001
    with server.client(cid) as c, server.client(other) as o:
        tags = [c.put_frame(s, s + 1, page(cid, s, s + 1)) for s in range(100)]
        assert all(f.status == proto.OK for f in c.wait(tags).values())
        assert o.put(20, 1, page(other, 20)) == proto.OK

        # slots 10..59; drops generation <= 40, i.e. slots 10..39
        assert c.invalidate(10, 40, count=50) == proto.OK
        for s in range(100):
            status, data = c.get(s, s + 1)
            if 10 <= s < 40:
                assert status == proto.ENOENT, s
            else:
                assert status == proto.OK and data == page(cid, s, s + 1), s
        assert o.get(20, 1) == (proto.OK, page(other, 20))  # other client untouched

        assert c.invalidate(0, proto.GEN_ANY, count=0) == proto.OK
        assert c.invalidate(0, proto.GEN_ANY, count=proto.MAX_RANGE_COUNT + 1) == proto.EINVAL
        assert c.invalidate(2**64 - 10, proto.GEN_ANY, count=100) == proto.EINVAL
        assert c.invalidate(2**64 - 10, proto.GEN_ANY, count=11) == proto.EINVAL  # 2^64 + 1
        # a range may end exactly at 2^64 (protocol.md 5.4): the last slots there are
        for s in (2**64 - 3, 2**64 - 1):
            assert c.put(s, 1, page(cid, s)) == proto.OK
        assert c.invalidate(2**64 - 10, proto.GEN_ANY, count=10) == proto.OK
        assert [c.get(s, 1)[0] for s in (2**64 - 3, 2**64 - 1)] == [proto.ENOENT] * 2
        assert c.put(2**64 - 1, 1, page(cid, 1)) == proto.OK
        assert c.invalidate(2**64 - 1, proto.GEN_ANY, count=1, noreply=True) is None
        assert c.get(2**64 - 1, 1) == (proto.ENOENT, None)
        # a range wider than a quarter of the cache takes the full-scan path:
        # the same generation rule applies there (slots 40..69 have generation <= 70)
        assert c.invalidate(0, 70, count=1000) == proto.OK
        for s in range(40, 100):
            assert c.get(s, s + 1)[0] == (proto.ENOENT if s < 70 else proto.OK), s
        assert c.invalidate(0, proto.GEN_ANY, count=proto.MAX_RANGE_COUNT) == proto.OK
        assert c.status().used_pages == 1
        assert o.get(20, 1) == (proto.OK, page(other, 20))


def test_a_range_done_in_steps_drops_exactly_its_pages_and_keeps_the_order(start_server):
    """A range INVALIDATE alone runs 16,384 lookups or table cells per event-loop round
    (request.h RANGE_STEP): on a 1 GiB cache a range of 65,599 slots takes 5 steps of
    lookups and one of 2^32 slots 32 steps of the 524,288-cell table.  It drops exactly its
    pages, and the connection's next requests (pipelined behind it) see it done."""
    srv = start_server("--cache-size", "1G", "--loops", "1")
    cid, other = 0xD00, 0xD01
    narrow_in, narrow_out = [0, 65535, 65536, 65598], [65599, 70000]
    wide_in, wide_out = [65599, 70000, 2**31, 2**32 - 1], [2**32, 2**40]
    with srv.client(cid) as c, srv.client(other) as o:
        for s_ in narrow_in + narrow_out + wide_out:
            assert c.put(s_, 3, page(cid, s_, 3)) == proto.OK
        assert o.put(10, 1, page(other, 10)) == proto.OK
        # narrow, pipelined: INVALIDATE, then a PUT and a GET of a slot in its range
        tags = [c.invalidate_frame(0, proto.GEN_ANY, count=65599)]
        tags.append(c.put_frame(65536, 9, page(cid, 65536, 9)))
        tags.append(c.get_frame(65536, 9))
        replies = c.wait(tags)
        assert [replies[t].status for t in tags] == [proto.OK] * 3
        assert replies[tags[2]].payload == page(cid, 65536, 9)  # after the range, kept
        for s_ in narrow_in:
            assert c.get(s_, 3)[0] == proto.ENOENT or s_ == 65536, s_
        for s_ in narrow_out:
            assert c.get(s_, 3) == (proto.OK, page(cid, s_, 3)), s_
        # wide, fire and forget, then STATUS on the same connection: done by then
        for s_ in wide_in:
            assert c.put(s_, 4, page(cid, s_, 4)) == proto.OK
        before = c.status()
        assert c.invalidate(0, proto.GEN_ANY, count=proto.MAX_RANGE_COUNT, noreply=True) is None
        after = c.status()
        assert before.used_pages - after.used_pages == len(set(wide_in) | {65536})
        assert after.invalidates - before.invalidates == 1
        for s_ in wide_out:
            assert c.get(s_, 3) == (proto.OK, page(cid, s_, 3)), s_
        assert o.get(10, 1) == (proto.OK, page(other, 10))  # another client's: untouched


def test_invalidate_noreply(server):
    with server.client(0x77) as c:
        assert c.put(1, 1, page(0x77, 1)) == proto.OK
        assert c.invalidate(1, noreply=True) is None
        # the next reply on the wire is the STATUS reply, not an INVALIDATE one
        tag = c.send(proto.STATUS)
        frame = c.recv()
        assert (frame.type, frame.tag) == (proto.STATUS | proto.REPLY, tag)
        assert proto.decode_status(frame.payload).used_pages == 0
        assert proto.decode_status(frame.payload).invalidates == 1


def test_a_noreply_invalidate_that_breaks_the_protocol_gets_no_reply_either(server):
    """protocol.md 5.4: with NSWAP_F_NOREPLY the server sends no reply at all, errors
    included: a violation closes the connection without an EPROTO frame."""
    with server.client(0x78) as c:
        # a plain INVALIDATE with a payload is a violation (section 9)
        c.send(proto.INVALIDATE, b"12345678", slot=1, generation=1, flags=proto.F_NOREPLY)
        with pytest.raises(proto.ConnectionClosed):
            frame = c.recv()
            pytest.fail("got a reply: %r" % (frame,))
    assert server.wait_log(r"protocol violation: INVALIDATE with a 8-byte payload")
    with server.client(0x79) as c:  # the same without NOREPLY: EPROTO, then closed
        tag = c.send(proto.INVALIDATE, b"12345678", slot=1, generation=1)
        assert c.wait([tag])[tag].header.status == proto.EPROTO


def test_pipelining_256_in_flight(server):
    cid = 0xABC
    with server.client(cid) as c:
        frames = b"".join(put_frame(cid, s, 1, page(cid, s), tag=1000 + s) for s in range(256))
        c.send_raw(frames)  # all 256 PUTPAGEs in flight before reading a reply
        replies = c.wait(range(1000, 1256))
        assert len(replies) == 256
        for tag, frame in replies.items():
            assert frame.status == proto.OK and frame.slot == tag - 1000

        order = list(range(256))
        random.Random(5).shuffle(order)
        tags = {c.get_frame(s, 1): s for s in order}
        got = c.wait(tags)
        for tag, slot in tags.items():
            assert got[tag].slot == slot
            assert got[tag].payload == page(cid, slot), slot


def test_frames_split_across_tcp_segments(server):
    cid = 0x51
    with server.client(cid) as c:
        raw = put_frame(cid, 3, 1, page(cid, 3), tag=42)
        cuts = [0, 1, 30, 55, 56, 57, 2000, len(raw)]
        for a, b in zip(cuts, cuts[1:], strict=False):
            c.send_raw(raw[a:b])
            time.sleep(0.01)
        assert c.wait([42])[42].status == proto.OK
        assert c.get(3, 1) == (proto.OK, page(cid, 3))


# --- generation rules ----------------------------------------------------------


def test_generation_rules(server):
    cid = 0x600
    with server.client(cid) as c:
        assert c.put(1, 5, page(cid, 1, 5)) == proto.OK
        used = c.status().used_pages

        # an older write arriving late is refused; the newer page stays
        tag = c.put_frame(1, 3, page(cid, 1, 3))
        stale = c.wait([tag])[tag]
        assert stale.status == proto.ESTALE
        assert stale.generation == 5  # the reply names the stored generation
        assert c.get(1, 5) == (proto.OK, page(cid, 1, 5))

        # reading with another generation is stale, in both directions
        assert c.get(1, 4) == (proto.ESTALE, None)
        assert c.get(1, 6) == (proto.ESTALE, None)
        assert c.get(2, 5) == (proto.ENOENT, None)

        # same generation re-put replaces, without using another page
        assert c.put(1, 5, page(cid, 1, 55)) == proto.OK
        assert c.get(1, 5) == (proto.OK, page(cid, 1, 55))
        assert c.status().used_pages == used

        # INVALIDATE drops only generations <= its own
        assert c.put(1, 7, page(cid, 1, 7)) == proto.OK
        assert c.invalidate(1, 6) == proto.OK
        assert c.get(1, 7) == (proto.OK, page(cid, 1, 7))
        assert c.invalidate(1, 7) == proto.OK
        assert c.get(1, 7) == (proto.ENOENT, None)
        assert c.put(1, 2, page(cid, 1, 2)) == proto.OK  # slot free again: any generation
        assert c.invalidate(1, proto.GEN_ANY) == proto.OK
        assert c.status().used_pages == used - 1


def test_enospc_when_full(start_server):
    srv = start_server("--cache-size", "64K")  # 16 pages
    cid = 0x700
    with srv.client(cid) as c:
        assert c.server.capacity_pages == 16
        for s in range(16):
            assert c.put(s, 1, page(cid, s)) == proto.OK
        assert c.put(16, 1, page(cid, 16)) == proto.ENOSPC
        assert c.put(3, 2, page(cid, 3, 2)) == proto.OK  # re-put needs no new page
        assert c.get(16, 1) == (proto.ENOENT, None)
        assert c.invalidate(0) == proto.OK
        assert c.put(16, 1, page(cid, 16)) == proto.OK
        st = c.status()
        assert (st.used_pages, st.capacity_pages) == (16, 16)
        for s in range(1, 17):
            assert c.get(s, 2 if s == 3 else 1)[1] == page(cid, s, 2 if s == 3 else 1)


def put_reply(c, slot, generation, data):
    """(status, room) of a PUTPAGE: room is the reply's PutReply, None without payload."""
    tag = c.put_frame(slot, generation, data)
    frame = c.wait([tag])[tag]
    frame.check_crc()  # raises on a damaged payload
    room = proto.decode_put_reply(frame.payload) if frame.payload else None
    return frame.header.status, room


def test_put_replies_carry_the_room_with_free_hint(start_server):
    """With FEAT_FREE_HINT every PUTPAGE reply, OK or ENOSPC, says the server's free pages
    and capacity just after it (what gossip announces, rounds later); without it, nothing."""
    srv = start_server("--cache-size", "64K")  # 16 pages
    cid, other = 0x710, 0x711
    with srv.client() as c, srv.client(other) as plain:
        c.hello(cid, "hinted", features=proto.FEAT_RANGE_INVALIDATE | proto.FEAT_FREE_HINT)
        for s in range(10):
            assert put_reply(c, s, 1, page(cid, s)) == (proto.OK, (15 - s, 16))
        assert put_reply(c, 3, 2, page(cid, 3, 2)) == (proto.OK, (6, 16))  # re-put: no page
        # another client's pages count: the figure is the server's, not this client's
        assert put_reply(plain, 0, 1, page(other, 0)) == (proto.OK, None)
        assert put_reply(c, 10, 1, page(cid, 10)) == (proto.OK, (4, 16))
        for s in range(11, 15):
            assert put_reply(c, s, 1, page(cid, s))[0] == proto.OK
        assert put_reply(c, 15, 1, page(cid, 15)) == (proto.ENOSPC, (0, 16))
        assert put_reply(plain, 1, 1, page(other, 1)) == (proto.ENOSPC, None)
        # a lower limit is the capacity it lends now; over it, nothing is free
        with srv.client() as ctl:
            assert ctl.set_cache_limit(8)[0] == proto.OK
        assert put_reply(c, 3, 3, page(cid, 3, 3)) == (proto.OK, (0, 8))
        assert c.invalidate(0, proto.GEN_ANY, count=15) == proto.OK
        assert put_reply(c, 20, 1, page(cid, 20)) == (proto.OK, (6, 8))  # other's page + this
        # other answers carry nothing: ESTALE, EBADCRC
        assert put_reply(c, 20, 2, page(cid, 20, 2))[0] == proto.OK
        assert put_reply(c, 20, 1, page(cid, 20)) == (proto.ESTALE, None)
        tag = c.new_tag()
        c.send_raw(put_frame(cid, 21, 1, page(cid, 21), tag, crc=1, version=c.version))
        frame = c.wait([tag])[tag]
        assert (frame.header.status, frame.payload) == (proto.EBADCRC, b"")


def test_a_stopping_server_says_it_has_no_room(start_server):
    """After SIGTERM nswapd still answers what is in flight, but its PUTPAGE replies say
    0 of 0 pages: a client stops placing pages on a server that is about to go."""
    srv = start_server("--cache-size", "64K")
    cid = 0x712
    with srv.client() as c:
        c.hello(cid, "hinted", features=proto.FEAT_FREE_HINT)
        assert put_reply(c, 0, 1, page(cid, 0)) == (proto.OK, (15, 16))
        batch = b"".join(put_frame(cid, s, 1, page(cid, s), tag=100 + s) for s in range(1, 9))
        srv.signal(signal.SIGTERM)
        assert srv.wait_log(r"SIGTERM: draining 1 connections")
        c.send_raw(batch)
        replies = c.wait(range(101, 109))
        assert {(f.status, proto.decode_put_reply(f.payload)) for f in replies.values()} == {
            (proto.OK, (0, 0))
        }
    assert srv.proc.wait(10) == 0


def test_bad_payload_crc_is_refused_and_connection_survives(server):
    cid = 0x800
    with server.client(cid) as c:
        data = page(cid, 4)
        c.send_raw(put_frame(cid, 4, 1, data, tag=500, crc=proto.crc32c(data) ^ 1))
        assert c.wait([500])[500].status == proto.EBADCRC
        assert c.get(4, 1) == (proto.ENOENT, None)
        assert c.put(4, 1, data) == proto.OK
        assert c.get(4, 1) == (proto.OK, data)
        assert c.status().errors == 1


def test_client_id_must_match_the_hello(server):
    with server.client(0x900) as c, server.client(0x901) as other:
        assert other.put(1, 1, page(0x901, 1)) == proto.OK
        tag = c.get_frame(1, 1, client_id=0x901)
        frame = c.wait([tag])[tag]
        assert frame.status == proto.EINVAL and frame.payload == b""
        tag = c.put_frame(1, 9, page(0x901, 1, 9), client_id=0x901)
        assert c.wait([tag])[tag].status == proto.EINVAL
        tag = c.invalidate_frame(1, client_id=0x901)
        assert c.wait([tag])[tag].status == proto.EINVAL
        assert other.get(1, 1) == (proto.OK, page(0x901, 1))


# --- negotiation -----------------------------------------------------------------


def test_version_negotiation(server):
    with server.client() as c:
        with pytest.raises(proto.StatusError) as exc:
            c.hello(0x1, min_version=2, max_version=5)
        assert exc.value.status == proto.EVERSION
        offer = proto.decode_hello(exc.value.frame.payload)
        assert (offer.min_version, offer.max_version) == (1, 1)  # what the server speaks
        assert read_until_closed(c.sock) == b""
    assert server.wait_log(r"offers versions 2-5, we speak 1-1; closing")

    with server.client() as c:
        reply = c.hello(0x2, min_version=1, max_version=9, features=0)
        assert (reply.min_version, reply.max_version, reply.features) == (1, 1, 0)
        assert c.version == 1


def test_hello_with_client_id_zero_is_refused_but_may_be_retried(server):
    with server.client() as c:
        with pytest.raises(proto.StatusError) as exc:
            c.hello(0)
        assert exc.value.status == proto.EINVAL
        c.hello(0x3)
        assert c.put(0, 1, page(3, 0)) == proto.OK


def test_status_probe_before_hello(server):
    # a single frame, as a monitoring probe would send it, then half-close
    with server.connect() as s:
        s.sendall(proto.encode_frame(proto.STATUS, tag=7))
        s.shutdown(socket.SHUT_WR)
        frames = split_frames(read_until_closed(s))
    assert len(frames) == 1
    assert (frames[0].type, frames[0].tag, frames[0].status) == (proto.STATUS | 0x80, 7, 0)
    st = proto.decode_status(frames[0].payload)
    assert st.capacity_pages == 1024 and st.clients == 0


CONNECT_AND_READ = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.settimeout(5)
try:
    print("closed" if s.recv(1) == b"" else "data")
except socket.timeout:
    print("open")
except ConnectionResetError:
    print("closed")
"""


@pytest.mark.skipif(not nobody.available(), reason="needs root, setpriv and /usr/bin/python3")
def test_max_clients(start_server):
    srv = start_server("--max-clients", "2")
    with srv.client(1) as a, srv.client(2) as b:
        # a third from another user is refused; root on the node itself still gets in
        r = nobody.run(CONNECT_AND_READ, srv.port)
        assert r.stdout.split() == ["closed"], r.stderr
        assert srv.wait_log(r"refused: max_clients \(2\) reached")
        with srv.client() as tool:
            assert tool.status().clients == 2
        assert a.status().clients == 2 and b.put(1, 1, page(2, 1)) == proto.OK
    # slots are free again (once the server has seen both closes)
    for _attempt in range(50):
        with srv.client() as c:
            try:
                c.hello(3)
                if c.status().clients == 1:  # 2: it came in as one of a and b closed
                    break
            except (proto.NswapError, OSError):
                pass
        time.sleep(0.1)
    else:
        pytest.fail("no connection accepted after the others closed")


# --- many clients ------------------------------------------------------------------


def test_32_concurrent_clients_do_not_see_each_other(server):
    nclients, npages = 32, 16
    barrier = threading.Barrier(nclients, timeout=60)
    errors = []

    def run(i):
        cid = 0x10000 + i
        try:
            with server.client(cid, "c%d" % i) as c:
                tags = [c.put_frame(s, 1, page(cid, s)) for s in range(npages)]
                assert all(f.status == proto.OK for f in c.wait(tags).values())
                barrier.wait()  # every client has written the same slot numbers
                tags = {c.get_frame(s, 1): s for s in range(npages)}
                for tag, frame in c.wait(tags).items():
                    assert frame.payload == page(cid, tags[tag]), (cid, tags[tag])
                barrier.wait()
                # drop our pages; nobody else's may go with them
                assert c.invalidate(0, proto.GEN_ANY, count=npages) == proto.OK
        except Exception as exc:  # reported below, with the client named
            errors.append("client %d: %r" % (i, exc))
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    with server.client() as c:
        st = c.status()
        assert st.used_pages == 0
        assert st.puts == nclients * npages and st.gets == nclients * npages


# --- protocol violations -----------------------------------------------------------

BAD_CID = 0xBAD


def _mutated(raw, offset, value, fix_crc=True):
    b = bytearray(raw)
    b[offset] = value
    if fix_crc:
        b[52:56] = struct.pack("<I", proto.crc32c(bytes(b[:52])))
    return bytes(b)


def _frame(msg_type, payload=b"", **fields):
    fields.setdefault("client_id", BAD_CID)
    fields.setdefault("tag", 66)
    return proto.encode_frame(msg_type, payload, **fields)


GOOD_PUT = put_frame(BAD_CID, 1, 1, page(BAD_CID, 1), tag=66)

# name -> (say HELLO first?, frame bytes, logged reason, header trusted -> EPROTO)
VIOLATIONS = {
    "bad magic": (True, b"XXXX" + GOOD_PUT[4:], "bad magic 0x58585858", False),
    "bad hdr_crc": (True, _mutated(GOOD_PUT, 52, GOOD_PUT[52] ^ 1, False), "bad header crc", False),
    "wrong version": (True, _frame(proto.GETPAGE, version=2), "frame version 2, negotiated", True),
    "nonzero reserved": (True, _frame(proto.GETPAGE, reserved=1), "reserved byte is 0x01", True),
    "reply type": (True, _frame(proto.GETPAGE | proto.REPLY), "reply-type frame (type 0x83)", True),
    "length too big": (
        True,
        proto.Header(
            type=proto.PUTPAGE, client_id=BAD_CID, tag=66, length=proto.MAX_PAYLOAD + 1
        ).pack(),
        "exceeds NSWAP_MAX_PAYLOAD",
        True,
    ),
    "short PUTPAGE": (True, _frame(proto.PUTPAGE, b"x" * 100), "PUTPAGE length 100", True),
    "long PUTPAGE": (True, _frame(proto.PUTPAGE, b"x" * 4104), "PUTPAGE length 4104", True),
    "GETPAGE with payload": (True, _frame(proto.GETPAGE, b"12345678"), "GETPAGE with a 8", True),
    "PUTPAGE before HELLO": (False, GOOD_PUT, "PUTPAGE before HELLO", True),
    "INVALIDATE before HELLO": (False, _frame(proto.INVALIDATE), "INVALIDATE before HELLO", True),
    "second HELLO": (True, hello_frame(BAD_CID, tag=66), "second HELLO", True),
    "unknown type": (True, _frame(42), "unknown message type 42", True),
    "type zero": (True, _frame(0), "unknown message type 0", True),
    "PUNTPAGE": (
        True,
        _frame(proto.PUNTPAGE, b"p" * PAGE, hop_count=1),
        "PUNTPAGE without negotiated NSWAP_FEAT_MIGRATION",
        True,
    ),
    "UPDATE": (True, _frame(proto.UPDATE), "UPDATE (type 7) is reserved", True),
    "GOSSIP": (True, _frame(proto.GOSSIP), "GOSSIP (type 8) is reserved", True),
    "status in request": (True, _frame(proto.GETPAGE, status=3), "status 3 in a request", True),
    "AUTH flag": (True, _frame(proto.GETPAGE, flags=proto.F_AUTH), "flags 0x0100 not valid", True),
    "RANGE on GETPAGE": (True, _frame(proto.GETPAGE, flags=proto.F_RANGE), "flags 0x0001", True),
    "crc with empty payload": (True, _frame(proto.GETPAGE, crc=5), "crc 0x00000005 with an", True),
    "range INVALIDATE length": (
        True,
        _frame(proto.INVALIDATE, b"1234", flags=proto.F_RANGE),
        "range INVALIDATE length 4",
        True,
    ),
    "short HELLO": (
        False,
        _frame(proto.HELLO, proto.encode_hello()[:40]),
        "HELLO payload is 40 bytes",
        True,
    ),
    "short SET_CACHE_LIMIT": (
        True,
        _frame(proto.SET_CACHE_LIMIT, b"1234"),
        "SET_CACHE_LIMIT length 4, must be 8",
        True,
    ),
    "RANGE on SET_CACHE_LIMIT": (
        False,
        _frame(proto.SET_CACHE_LIMIT, proto.encode_cache_limit(8), flags=proto.F_RANGE),
        "flags 0x0001 not valid for SET_CACHE_LIMIT",
        True,
    ),
    "HELLO version 0": (
        False,
        _mutated(hello_frame(BAD_CID, tag=66), 4, 0),  # header byte 4 = version
        "version 0 in HELLO",
        True,
    ),
}


@pytest.fixture(scope="module")
def shared_server(nswapd_bin):
    srv = nswapd.Nswapd(nswapd_bin, "--cache-size", "4M")
    yield srv
    rc = srv.stop()
    assert rc == 0, srv.log_text()


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_protocol_violation_closes_only_that_connection(shared_server, name):
    srv = shared_server
    say_hello, raw, reason, trusted = VIOLATIONS[name]
    good_cid = 0x6000 + sorted(VIOLATIONS).index(name)
    with srv.client(good_cid) as good:
        assert good.put(1, 1, page(good_cid, 1)) == proto.OK
        with srv.connect() as bad:
            if say_hello:
                bad.sendall(hello_frame(BAD_CID, tag=1))
            peer = "127.0.0.1:%d" % bad.getsockname()[1]
            _sent, early = pump(bad, raw, timeout=5)
            frames = split_frames(early + read_until_closed(bad))  # fails if left open
        if say_hello:
            assert frames and frames[0].type == proto.HELLO | proto.REPLY
            frames = frames[1:]
        if trusted:
            assert len(frames) == 1, frames
            assert (frames[0].status, frames[0].tag) == (proto.EPROTO, 66)
        else:
            assert frames == []  # nothing is addressed to a header we cannot trust
        m = srv.wait_log(re.escape(peer) + r": protocol violation: (.*); closing connection")
        assert m, "no violation logged for %s:\n%s" % (peer, srv.log_text()[-3000:])
        assert reason in m.group(1)
        # the other client is unaffected
        assert good.get(1, 1) == (proto.OK, page(good_cid, 1))
        assert good.put(2, 1, page(good_cid, 2)) == proto.OK
        assert good.invalidate(0, proto.GEN_ANY, count=4) == proto.OK
    assert srv.alive()


# --- fuzzing -----------------------------------------------------------------------


FUZZ_PAGE = page(0xF022, 0)


def _fuzz_frames(rng, cid, count):
    """``count`` frames: mostly valid requests with random keys, some with damaged
    payloads (answered EBADCRC), a few that break the protocol (connection closed)."""
    templates = [
        lambda: put_frame(
            cid,
            rng.randrange(64),
            rng.choice([0, 1, 2, 3, 2**64 - 1]),
            FUZZ_PAGE,
            tag=rng.randrange(2**64),
            hop_count=rng.randrange(256),
        ),
        lambda: _frame(
            proto.GETPAGE,
            client_id=cid,
            slot=rng.randrange(64),
            generation=rng.choice([0, 1, 2, 3]),
            tag=rng.randrange(2**64),
        ),
        lambda: _frame(
            proto.INVALIDATE,
            client_id=cid,
            slot=rng.randrange(64),
            generation=rng.choice([0, 1, 2, 2**64 - 1]),
            flags=rng.choice([0, proto.F_NOREPLY]),
        ),
        lambda: _frame(
            proto.INVALIDATE,
            struct.pack("<Q", rng.choice([0, 1, 10, 1 << 32, (1 << 32) + 1, 2**64 - 1])),
            client_id=cid,
            slot=rng.choice([0, 5, 2**64 - 3]),
            generation=rng.choice([0, 3, 2**64 - 1]),
            flags=proto.F_RANGE | rng.choice([0, proto.F_NOREPLY]),
        ),
        lambda: _frame(proto.STATUS, client_id=cid),
        lambda: _frame(proto.GETPAGE, client_id=cid + 1, slot=1),  # someone else's page
    ]
    out = []
    for _frame_no in range(count):
        raw = bytearray(rng.choice(templates)())
        kind = rng.random()
        if kind < 0.006:  # flip header bits, keep hdr_crc valid: reaches the deep checks
            for _flip in range(rng.randint(1, 3)):
                raw[rng.randrange(52)] ^= 1 << rng.randrange(8)
            raw[52:56] = struct.pack("<I", proto.crc32c(bytes(raw[:52])))
        elif kind < 0.012:  # random header fields, valid hdr_crc
            fields = dict(
                type=rng.randrange(256),
                flags=rng.randrange(65536),
                version=rng.choice([0, 1, 2, 255]),
                length=rng.choice([0, 8, 48, 88, PAGE, PAGE + 256, rng.randrange(1 << 32)]),
                client_id=cid,
                reserved=rng.choice([0, 0, 1]),
                status=rng.choice([0, 0, 1]),
            )
            raw = bytearray(proto.Header(**fields).pack())
            raw += rng.randbytes(min(fields["length"], rng.randrange(PAGE + 300)))
        elif kind < 0.015:  # flip a byte anywhere (usually caught by hdr_crc)
            raw[rng.randrange(len(raw))] ^= 0xFF
        elif kind < 0.018:  # garbage
            raw = bytearray(rng.randbytes(rng.randrange(1, 200)))
        elif kind < 0.021:  # truncated frame: the stream is out of step from here on
            raw = raw[: rng.randrange(len(raw))]
        elif kind < 0.08 and len(raw) > 56:  # damaged payload: EBADCRC, not fatal
            raw[56 + rng.randrange(len(raw) - 56)] ^= 0x5A
        out.append(bytes(raw))
    return out


def test_fuzz_thousands_of_mutated_frames(start_server):
    srv = start_server("--cache-size", "16M")  # room for every page the fuzzers put
    good_cid = 0x7777
    good = srv.client(good_cid)
    for s in range(32):
        assert good.put(s, 1, page(good_cid, s)) == proto.OK

    nworkers, conns_per_worker, frames_per_conn = 4, 16, 60
    totals = []
    errors = []
    deadline = time.monotonic() + 90

    def worker(w):
        rng = random.Random(1000 + w)
        sent_frames = 0
        try:
            for i in range(conns_per_worker):
                if time.monotonic() > deadline:
                    break
                cid = 0x20000 + w * 100 + i
                frames = _fuzz_frames(rng, cid, frames_per_conn)
                if rng.random() < 0.9:
                    frames.insert(0, hello_frame(cid, tag=1))
                with srv.connect() as s:
                    pump(s, b"".join(frames), timeout=10)
                    try:
                        s.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    read_until_closed(s, timeout=10)
                sent_frames += len(frames)
        except Exception as exc:
            errors.append("worker %d: %r" % (w, exc))
        totals.append(sent_frames)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(nworkers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sum(totals) >= 3000, totals
    assert srv.alive(), srv.log_text()[-3000:]

    # the server is healthy and the good client's data is intact
    for s in range(32):
        assert good.get(s, 1) == (proto.OK, page(good_cid, s)), s
    st = good.status()
    assert st.clients == 1
    # most frames were executed, not cut short by an early violation
    assert st.puts + st.gets + st.invalidates + st.errors >= 1500, st
    violations = srv.log_text().count("protocol violation")
    assert violations >= 10, violations
    with srv.client(0x8888) as fresh:
        assert fresh.put(1, 1, page(0x8888, 1)) == proto.OK
        assert fresh.get(1, 1) == (proto.OK, page(0x8888, 1))
    good.close()


# --- counters, signals, backpressure ----------------------------------------------


def test_status_counters_match_what_was_done(server):
    cid = 0xC0
    sent = 0
    with server.client() as c:
        real_send = c.send_raw

        def counting_send(data):
            nonlocal sent
            sent += len(data)
            real_send(data)

        c.send_raw = counting_send
        received = 0
        real_recv = c._recv_wire

        def counting_recv(verify=True):
            nonlocal received
            frame = real_recv(verify)
            received += proto.HDR_SIZE + len(frame.payload)
            return frame

        c._recv_wire = counting_recv

        c.hello(cid)
        for s in range(10):
            assert c.put(s, 1, page(cid, s)) == proto.OK
        assert c.put(0, 0, page(cid, 0, 0)) == proto.ESTALE  # error
        for s in range(6):
            assert c.get(s, 1)[0] == proto.OK
        assert c.get(50, 1)[0] == proto.ENOENT  # miss
        assert c.get(7, 9)[0] == proto.ESTALE  # miss
        assert c.invalidate(8) == proto.OK
        assert c.invalidate(9) == proto.OK
        assert c.invalidate(100) == proto.OK  # nothing there, still counted
        assert c.invalidate(0, proto.GEN_ANY, count=2) == proto.OK
        c.send_raw(put_frame(cid, 5, 2, page(cid, 5), tag=999, crc=1))  # EBADCRC: error
        assert c.wait([999])[999].status == proto.EBADCRC

        bytes_out_before = received
        st = c.status()
        assert st.capacity_pages == 1024
        assert st.used_pages == 6  # 10 put, 2 + 2 invalidated
        assert st.clients == 1
        assert st.puts == 10
        assert st.gets == 8
        assert st.get_misses == 2
        assert st.invalidates == 4
        assert st.errors == 2
        assert st.bytes_in == sent  # including this STATUS request
        assert st.bytes_out == bytes_out_before  # everything before this reply
        assert 0 <= st.uptime_s < 60


def test_software_crc32c(start_server):
    srv = start_server("--cache-size", "1M", env={"NSWAPD_CRC32C": "software"})
    assert srv.wait_log(r"crc32c software \(slicing-by-8\)")
    cid = 0xCC
    with srv.client(cid) as c:
        for s in range(8):
            assert c.put(s, 1, page(cid, s)) == proto.OK
        c.send_raw(put_frame(cid, 9, 1, page(cid, 9), tag=99, crc=proto.crc32c(page(cid, 9)) ^ 8))
        assert c.wait([99])[99].status == proto.EBADCRC
        for s in range(8):
            tag = c.get_frame(s, 1)
            frame = c.wait([tag])[tag]  # Client.recv checks the reply crc
            assert frame.payload == page(cid, s)


def test_default_crc32c_uses_sse42_when_the_cpu_has_it(server):
    with open("/proc/cpuinfo") as f:
        has_sse42 = " sse4_2" in f.read()
    expected = "sse4.2" if has_sse42 else r"software \(slicing-by-8\)"
    assert server.wait_log(r"crc32c " + expected), server.log_text()


def test_sighup_logs_status(server):
    with server.client(0xD0) as c:
        assert c.put(1, 1, page(0xD0, 1)) == proto.OK
        server.signal(signal.SIGHUP)
        m = server.wait_log(r"status: capacity_pages 1024 used_pages 1 clients 1 .*puts 1 ")
        assert m, server.log_text()
        assert c.get(1, 1) == (proto.OK, page(0xD0, 1))  # still serving


def test_sigterm_drains_pipelined_requests(start_server):
    srv = start_server("--cache-size", "4M")
    cid = 0xE0
    with srv.client(cid) as c, srv.client(cid + 1) as idle:
        assert idle.status().clients == 2
        batch = b"".join(put_frame(cid, s, 1, page(cid, s), tag=100 + s) for s in range(256))
        c.send_raw(batch)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        replies = c.wait(range(100, 356))
        assert len(replies) == 256
        assert all(f.status == proto.OK for f in replies.values())
        with pytest.raises(proto.ConnectionClosed):
            c.recv()  # then the server closes
        assert read_until_closed(idle.sock) == b""
        rc = srv.proc.wait(10)
        elapsed = time.monotonic() - t0
    assert rc == 0, srv.log_text()
    assert elapsed < 5.0
    assert srv.wait_log(r"SIGTERM: draining 2 connections")
    with pytest.raises(OSError):
        srv.connect(timeout=2)


def test_sigterm_finishes_a_frame_that_is_half_received(start_server):
    # The drain stops reading a connection only at a frame boundary after
    # NSWAPD_DRAIN_QUIET_MS without data: a request in flight is not cut in half.
    srv = start_server("--cache-size", "4M")
    cid = 0xE4
    with srv.client(cid) as c:
        frames = [put_frame(cid, s, 1, page(cid, s), tag=10 + s) for s in range(11)]
        c.send_raw(b"".join(frames[:10]) + frames[10][:1000])
        assert len(c.wait(range(10, 20))) == 10
        srv.signal(signal.SIGTERM)
        assert srv.wait_log(r"SIGTERM: draining 1 connections")
        time.sleep(0.3)  # longer than the quiet period
        c.send_raw(frames[10][1000:])
        assert c.wait([20])[20].status == proto.OK
        with pytest.raises(proto.ConnectionClosed):
            c.recv()
    assert srv.proc.wait(10) == 0


def test_sigterm_drain_is_bounded_when_a_client_stops_reading(start_server):
    srv = start_server("--cache-size", "4M")
    cid = 0xE8
    c = srv.client(cid)
    assert c.put(0, 1, page(cid, 0)) == proto.OK
    # 20000 GETPAGEs = 83 MiB of replies that we never read: the server stalls
    one = proto.encode_frame(proto.GETPAGE, tag=0, client_id=cid, slot=0, generation=1)
    gets = one * 20000
    pump(c.sock, gets, timeout=10, stall=1.0)
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    rc = srv.proc.wait(15)
    elapsed = time.monotonic() - t0
    c.close()
    assert rc == 0
    assert 4.0 < elapsed < 8.0, elapsed  # NSWAPD_DRAIN_MS is 5 s
    assert srv.wait_log(r"drain timeout: closing 1 connections")


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_backpressure_bounds_memory_and_spares_other_clients(start_server):
    srv = start_server("--cache-size", "4M")
    cid, n = 0xF0, 20000  # 20000 GETPAGE replies = 83 MiB if the server buffered them
    slow = proto.Client()
    slow.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    slow.sock.settimeout(IO_TIMEOUT)
    slow.sock.connect(("127.0.0.1", srv.port))
    slow.hello(cid)
    for s in range(8):
        assert slow.put(s, 1, page(cid, s)) == proto.OK
    crcs = {s: proto.crc32c(page(cid, s)) for s in range(8)}
    rss_before = _rss_kib(srv.proc.pid)
    gets = b"".join(
        proto.encode_frame(proto.GETPAGE, tag=i, client_id=cid, slot=i % 8, generation=1)
        for i in range(n)
    )
    # send without reading replies until the server stops reading from us
    slow.sock.setblocking(False)
    sent = 0
    last = time.monotonic()
    deadline = last + 20
    while sent < len(gets) and time.monotonic() - last < 1.0 and time.monotonic() < deadline:
        try:
            k = slow.sock.send(gets[sent : sent + 65536])
            sent += k
            last = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    assert sent < len(gets), "the server never pushed back"
    rss_stalled = _rss_kib(srv.proc.pid)
    assert rss_stalled - rss_before < 8 * 1024, (rss_before, rss_stalled)

    # the stalled connection does not hold anyone else up
    with srv.client(cid + 1) as other:
        for s in range(4):
            assert other.put(s, 1, page(cid + 1, s)) == proto.OK
            assert other.get(s, 1) == (proto.OK, page(cid + 1, s))

    # now read everything: every reply arrives, in order, correct
    slow.sock.setblocking(True)
    slow.settimeout(IO_TIMEOUT)
    got = 0
    sender_error = []

    def send_rest():
        try:
            slow.sock.sendall(gets[sent:])
        except OSError as exc:
            sender_error.append(exc)

    t = threading.Thread(target=send_rest)
    t.start()
    while got < n:
        frame = slow._recv_wire(verify=False)
        slot = frame.tag % 8
        assert frame.tag == got and frame.status == proto.OK
        assert frame.crc == crcs[slot] and frame.payload == page(cid, slot)
        got += 1
    t.join(30)
    assert not sender_error
    slow.close()


# --- configuration -----------------------------------------------------------------


def run_nswapd(binary, *args, timeout=10):
    return subprocess.run(
        [str(binary), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ["# test", "listen = 127.0.0.1:0", "cache_size = 12X"],
            "{path}:3: cache_size: '12X' is not a size; use bytes or K/M/G suffix, e.g. 512M",
        ),
        (
            ["cache_size = 1M", "bogus = 1"],
            "{path}:2: bogus: unknown key; valid keys: listen, cache_size, name, max_clients,"
            " log_level, lock_memory, loops",
        ),
        (["max_clients = 0"], "{path}:1: max_clients: '0' is not a client count"),
        (["max_clients = lots"], "{path}:1: max_clients: 'lots' is not a client count"),
        (["hello_timeout = 50"], "{path}:1: hello_timeout: '50' is not a number of milliseconds"),
        (["max_pending = 0"], "{path}:1: max_pending: '0' is not a connection count"),
        (
            ["max_pending_per_address = -1"],
            "{path}:1: max_pending_per_address: '-1' is not a connection count",
        ),
        (["", "listen = 127.0.0.1:99999"], "{path}:2: listen: '127.0.0.1:99999' has no valid port"),
        (["listen = nohost:1"], "{path}:1: listen: 'nohost:1' is not a numeric IP address"),
        (["log_level = chatty"], "{path}:1: log_level: 'chatty' is not a log level"),
        (["name = has space"], "{path}:1: name: 'has space' is not a valid name"),
        (["cache_size = 100"], "{path}:1: cache_size: '100' is too small"),
        (["lock_memory = perhaps"], "{path}:1: lock_memory: 'perhaps' is not a boolean"),
        (["just words"], "{path}:1: expected 'key = value', got 'just words'"),
    ],
)
def test_config_file_errors_exit_2(nswapd_bin, tmp_path, lines, message):
    conf = tmp_path / "nswapd.conf"
    conf.write_text("\n".join(lines) + "\n")
    r = run_nswapd(nswapd_bin, "-c", conf, "--foreground")
    assert r.returncode == 2
    assert r.stderr.startswith("nswapd: " + message.format(path=conf)), r.stderr
    assert r.stdout == ""


def test_cli_errors_exit_2(nswapd_bin, tmp_path):
    r = run_nswapd(nswapd_bin, "--cache-size", "12X", "--foreground")
    assert r.returncode == 2
    assert r.stderr.startswith(
        "nswapd: --cache-size: '12X' is not a size; use bytes or K/M/G suffix, e.g. 512M"
    )
    r = run_nswapd(nswapd_bin, "-c", tmp_path / "missing.conf")
    assert r.returncode == 2 and "cannot open config file" in r.stderr
    r = run_nswapd(nswapd_bin, "--no-such-option")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = run_nswapd(nswapd_bin, "--max-clients", "70000", "--check-config")
    assert r.returncode == 2 and "--max-clients: '70000'" in r.stderr


def test_check_config_and_cli_overrides_file(nswapd_bin, start_server, tmp_path):
    conf = tmp_path / "nswapd.conf"
    conf.write_text(
        "# comment\n"
        "listen = 127.0.0.1:0\n"
        "cache_size = 1M   # trailing comment\n"
        "name = from-file\n"
        "max_clients = 7\n"
        "log_level = warning\n"
    )
    r = run_nswapd(nswapd_bin, "-c", conf, "--cache-size", "2M", "--check-config")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "listen = 127.0.0.1:0",
        "cache_size = 2M",
        "name = from-file",
        "max_clients = 7",
        "hello_timeout = 10000",
        "max_pending = auto",
        "max_pending_per_address = 32",
        "log_level = warning",
        "lock_memory = no",
        "loops = auto",
    ]
    # the printed configuration is itself a valid config file
    again = tmp_path / "again.conf"
    again.write_text(r.stdout)
    assert run_nswapd(nswapd_bin, "-c", again, "--check-config").stdout == r.stdout

    srv = start_server("-c", conf, "--cache-size", "2M", "--log-level", "info")
    with srv.client(0x1) as c:
        assert c.server.capacity_pages == 512
        assert c.server.name == "from-file"


def test_port_in_use_exits_1(nswapd_bin, server):
    r = run_nswapd(nswapd_bin, "--listen", "127.0.0.1:%d" % server.port, "--foreground")
    assert r.returncode == 1
    assert "cannot listen on 127.0.0.1:%d: Address already in use" % server.port in r.stderr
    assert "stopped" not in r.stderr
    with server.client(0x5) as c:  # the running server is unaffected
        assert c.put(0, 1, page(5, 0)) == proto.OK


# --- runtime cache limit (SET_CACHE_LIMIT) ---------------------------------------------


def test_set_cache_limit_is_reported_by_status_and_hello(start_server):
    srv = start_server("--cache-size", "64K")  # 16 pages
    with srv.client() as ctl:  # a tool: no HELLO needed
        st = ctl.status()
        assert (st.capacity_pages, st.limit_pages, st.state_flags) == (16, 16, 0)
        status, st = ctl.set_cache_limit(10)
        assert status == proto.OK
        assert (st.capacity_pages, st.limit_pages, st.state_flags) == (16, 10, 0)
        assert ctl.status().limit_pages == 10
        assert ctl.set_cache_limit(10)[0] == proto.OK  # the same limit again: fine
    assert srv.wait_log(r"127\.0\.0\.1:\d+: cache limit 16 -> 10 pages \(maximum 16, 0 in use\)")
    cid = 0xA00
    with srv.client(cid) as c:
        assert c.server.capacity_pages == 10  # HELLO offers the limit
        for s in range(10):
            assert c.put(s, 1, page(cid, s)) == proto.OK
        assert c.put(10, 1, page(cid, 10)) == proto.ENOSPC  # full at the limit
        # after HELLO only where NSWAP_FEAT_CACHE_LIMIT was negotiated
        assert c.set_cache_limit(16) == (proto.EPERM, None)
        assert srv.wait_log(r"SET_CACHE_LIMIT refused: this connection did not negotiate")
        with srv.client() as ctl:
            ctl.hello(cid + 1, "ctl", features=proto.FEAT_CACHE_LIMIT)
            status, st = ctl.set_cache_limit(16)
        assert (status, st.limit_pages) == (proto.OK, 16)
        assert c.put(10, 1, page(cid, 10)) == proto.OK


@pytest.mark.parametrize("pages", [17, 2**64 - 1])
def test_set_cache_limit_out_of_bounds_is_refused_naming_the_bound(start_server, pages):
    srv = start_server("--cache-size", "64K")  # 16 pages
    with srv.client() as ctl:
        status, st = ctl.set_cache_limit(pages)
        assert status == proto.EINVAL
        assert (st.capacity_pages, st.limit_pages) == (16, 16)  # the bound, unchanged
        assert ctl.status().errors == 1
    m = srv.wait_log(r"SET_CACHE_LIMIT (\d+) pages refused: must be 0 to 16 pages")
    assert m and int(m.group(1)) == pages


def test_lowering_the_limit_below_usage_keeps_every_page(start_server):
    srv = start_server("--cache-size", "64K")
    cid = 0xB00
    with srv.client() as c:
        c.hello(cid, "owner", features=proto.FEAT_RANGE_INVALIDATE | proto.FEAT_CACHE_LIMIT)
        for s in range(12):
            assert c.put(s, 1, page(cid, s)) == proto.OK
        status, st = c.set_cache_limit(4)
        assert status == proto.OK
        assert (st.used_pages, st.limit_pages) == (12, 4)
        assert st.state_flags == proto.STATE_OVER_LIMIT
        assert srv.wait_log(r"cache limit 16 -> 4 pages .*12 in use\); over the limit")
        # new slots are refused, stored ones are still served and rewritable
        assert c.put(12, 1, page(cid, 12)) == proto.ENOSPC
        assert c.put(3, 2, page(cid, 3, 2)) == proto.OK
        for s in range(12):
            gen = 2 if s == 3 else 1
            assert c.get(s, gen) == (proto.OK, page(cid, s, gen))
        # usage falls under the limit: new slots are taken again
        assert c.invalidate(0, proto.GEN_ANY, count=9) == proto.OK
        st = c.status()
        assert (st.used_pages, st.state_flags) == (3, 0)
        assert c.put(12, 1, page(cid, 12)) == proto.OK
        assert c.put(13, 1, page(cid, 13)) == proto.ENOSPC  # 4 = the limit
        assert c.get(11, 1) == (proto.OK, page(cid, 11))


def _have_netns():
    return (
        os.geteuid() == 0
        and subprocess.run(
            ["ip", "netns", "list"], capture_output=True, timeout=10, check=False
        ).returncode
        == 0
    )


NETNS_CLIENT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as p
out = {}
for host in ("10.254.77.1", "127.0.0.1"):
    with p.Client(host, int(sys.argv[2]), timeout=10) as c:
        status, st = c.set_cache_limit(8)
        out[host] = [status, st.limit_pages if st else None, c.status().limit_pages]
print(json.dumps(out))
"""


OTHER_USER_CLIENT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as p
with p.Client("127.0.0.1", int(sys.argv[2]), timeout=10) as c:
    status, st = c.set_cache_limit(1)
    print(json.dumps([status, st, c.status().limit_pages]))
"""


@pytest.mark.skipif(not nobody.available(), reason="needs root, setpriv and /usr/bin/python3")
def test_set_cache_limit_from_another_local_user_is_refused(start_server):
    """Loopback is not enough: the cache limit is root's or nswapd's own user's to set
    (the uid owning the peer's socket, from the kernel's socket table)."""
    srv = start_server("--cache-size", "64K")
    r = nobody.run(OTHER_USER_CLIENT, nobody.COLLECTIONS, srv.port)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [proto.EPERM, None, 16]  # refused, limit unchanged
    assert srv.wait_log(
        r"127\.0\.0\.1:\d+: SET_CACHE_LIMIT refused: sent by uid 65534; only root or "
        r"nswapd's own user \(uid 0\)"
    ), srv.log_text()
    with srv.client() as ctl:  # root still may
        assert ctl.set_cache_limit(8)[0] == proto.OK


SEND_AND_CLOSE = r"""
import socket, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as p
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5)
s.sendall(p.encode_frame(p.SET_CACHE_LIMIT, p.encode_cache_limit(1), tag=1))
s.close()
"""


@pytest.mark.skipif(not nobody.available(), reason="needs root, setpriv and /usr/bin/python3")
def test_set_cache_limit_whose_sender_has_gone_is_refused(start_server):
    """A request whose socket its owner closed before nswapd read it: the socket table then
    has only a timewait entry (uid 0), which must not pass for root."""
    srv = start_server("--cache-size", "64K")
    srv.signal(signal.SIGSTOP)  # the request waits, unread, while its sender goes away
    try:
        r = nobody.run(SEND_AND_CLOSE, nobody.COLLECTIONS, srv.port)
        assert r.returncode == 0, r.stderr
        time.sleep(0.3)
    finally:
        srv.signal(signal.SIGCONT)
    assert srv.wait_log(r"SET_CACHE_LIMIT refused: cannot tell which user sent it"), srv.log_text()
    with srv.client() as tool:
        assert tool.status().limit_pages == 16  # unchanged


@pytest.mark.skipif(not _have_netns(), reason="needs root and ip netns")
def test_set_cache_limit_from_a_non_loopback_address_is_refused(nswapd_bin):
    """nswapd and the client in a private netns whose lo also has 10.254.77.1:
    the same client process is refused from that address, served from 127.0.0.1."""
    with netns.loopback_only("nswap-test", ["10.254.77.1"]) as (_ns, inside):
        with nswapd.running(
            nswapd_bin, "--cache-size", "64K", listen="0.0.0.0:0", command=inside
        ) as srv:
            r = subprocess.run(
                inside([sys.executable, "-c", NETNS_CLIENT, nobody.COLLECTIONS, str(srv.port)]),
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
            out = json.loads(r.stdout)
            assert out["10.254.77.1"] == [proto.EPERM, None, 16]  # refused, limit unchanged
            assert out["127.0.0.1"] == [proto.OK, 8, 8]
            m = srv.wait_log(r"10\.254\.77\.1:\d+: SET_CACHE_LIMIT refused: .*only from a loopback")
            assert m, srv.log_text()
            assert srv.stop() == 0
