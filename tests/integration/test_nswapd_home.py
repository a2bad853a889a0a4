"""nswapd sends pages over its cache limit back to their owners when no server can take them
(docs/protocol.md 11.1, "home"; src/nswapd/home.h).  Python clients on loopback play the
owners: one that offers NSWAP_FEAT_PUNTHOME (nswap.ko with a backing device) and answers,
and one that does not.  Gossip is off here, so no other server is known.
"""

import random
import re
import socket

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

HOME = proto.FEAT_RANGE_INVALIDATE | proto.FEAT_PUNTHOME
OWNER, OTHER = 0xA0A0, 0xC0C0
WINDOW = 16  # HOME_WINDOW in src/nswapd/home.h


def page(slot, generation):
    return random.Random("home/%d/%d" % (slot, generation)).randbytes(proto.PAGE_SIZE)


def sent_home(a, want, quiet=0.5, timeout=5.0):
    """The next `want` PUNTPAGE frames that reach A; then none may come for `quiet`
    seconds (0: no such check)."""
    frames = []
    a.settimeout(timeout)
    while len(frames) < want:
        frame = a.recv()
        assert frame.type == proto.PUNTPAGE, frame
        frames.append(frame)
    if quiet:
        a.settimeout(quiet)
        with pytest.raises((socket.timeout, TimeoutError)):
            raise AssertionError("one more than %d came: %r" % (want, a.recv()))
    return frames


def answer(a, frame, status=proto.OK, **fields):
    """The owner's PUNTPAGE reply: the frame's tag, slot, generation and hop count."""
    values = dict(
        tag=frame.tag,
        client_id=frame.client_id,
        slot=frame.slot,
        generation=frame.generation,
        hop_count=frame.hop_count,
        status=status,
    )
    values.update(fields)
    a.send(proto.PUNTPAGE | proto.REPLY, **values)


def take_all(a, want, quiet=0.5):
    """Answer OK to each page sent home as it comes, until `want` came (then none more for
    `quiet` seconds); returns their slots in order."""
    slots = []
    for _page in range(want):
        (frame,) = sent_home(a, 1, quiet=0)
        answer(a, frame)
        slots.append(frame.slot)
    if quiet:
        sent_home(a, 0, quiet)
    return slots


@pytest.fixture
def owner_and_other(start_server):
    """(server, owner A that takes pages home, client X that does not), 256 pages of
    cache; A stored slots 0-49, X slots 0-9, all generation 1."""
    srv = start_server("--cache-size", "1M")
    with srv.client() as a, srv.client() as x:
        assert a.hello(OWNER, "owner", features=HOME).features & proto.FEAT_PUNTHOME
        assert not x.hello(OTHER, "other", features=proto.FEAT_RANGE_INVALIDATE).features & (
            proto.FEAT_PUNTHOME
        )
        for s in range(50):
            assert a.put(s, 1, page(s, 1)) == proto.OK
        for s in range(10):
            assert x.put(s, 1, page(100 + s, 1)) == proto.OK
        yield srv, a, x


def set_limit(srv, pages):
    with srv.client() as ctl:
        status, st = ctl.set_cache_limit(pages)
        assert status == proto.OK, status
        return st


def test_pages_over_the_limit_go_home_to_the_owner_that_takes_them(owner_and_other):
    """40 over the limit: every one of them is the owner's (the other client does not take
    pages home), each frame is the stored page at hop count 1, at most 16 on their way, and
    each one the owner took is dropped here; the rest read back."""
    srv, a, x = owner_and_other
    set_limit(srv, 20)
    first = sent_home(a, WINDOW)  # and no more: no answer yet, the window is full
    for frame in first:
        assert (frame.client_id, frame.generation, frame.hop_count) == (OWNER, 1, 1)
        assert frame.flags == 0 and frame.payload == page(frame.slot, 1)
    for frame in first:
        answer(a, frame)
    slots = [f.slot for f in first] + take_all(a, 40 - WINDOW)  # then none: at the limit
    assert len(set(slots)) == 40 and set(slots) <= set(range(50))
    st = srv.status()
    assert (st["used_pages"], st["punts_home"]) == (20, 40)
    for s in range(50):
        expect = (proto.ENOENT, None) if s in slots else (proto.OK, page(s, 1))
        assert a.get(s, 1) == expect, s
    for s in range(10):
        assert x.get(s, 1) == (proto.OK, page(100 + s, 1))


def test_a_drain_without_gossip_sends_every_page_of_the_owner_home(owner_and_other):
    """SET_CACHE_LIMIT 0 with gossip off: the owner's 50 pages go home; the other client's
    10 stay until it drops them."""
    srv, a, x = owner_and_other
    st = set_limit(srv, 0)
    assert st.state_flags & proto.STATE_DRAINING
    assert sorted(take_all(a, 50)) == list(range(50))
    assert srv.status()["used_pages"] == 10
    assert x.invalidate(0, count=10) == proto.OK
    assert srv.status()["used_pages"] == 0


def test_stale_and_refused_answers(owner_and_other):
    """ESTALE (the owner's slot names another copy): dropped here all the same.  ENOSPC (the
    owner could not store it): the page stays, readable, and that connection gets no page
    home for a while."""
    srv, a, _x = owner_and_other
    set_limit(srv, 58)  # two over (60 stored)
    frames = sent_home(a, 2)
    answer(a, frames[0], proto.ESTALE)
    answer(a, frames[1], proto.ENOSPC)
    sent_home(a, 0, quiet=2.0)  # paused (HOME_PAUSE_MS), not sent again at once
    st = srv.status()
    assert (st["used_pages"], st["punts_home"]) == (59, 0)
    assert a.get(frames[0].slot, 1) == (proto.ENOENT, None)
    assert a.get(frames[1].slot, 1) == (proto.OK, page(frames[1].slot, 1))
    assert srv.wait_log(r"client 'owner' could not take slot %d home \(ENOSPC\)" % frames[1].slot)


def test_a_page_rewritten_on_its_way_home_keeps_the_new_copy(owner_and_other):
    """The owner writes the slot again (generation 2) before it answers for generation 1:
    the answer concerns the old copy only."""
    srv, a, _x = owner_and_other
    set_limit(srv, 59)
    (frame,) = sent_home(a, 1)
    assert a.put(frame.slot, 2, page(frame.slot, 2)) == proto.OK
    answer(a, frame)
    assert a.get(frame.slot, 2) == (proto.OK, page(frame.slot, 2))
    assert srv.status()["used_pages"] == 60


def test_a_closed_connection_leaves_its_pages_to_go_home_again(owner_and_other):
    """The owner's connection closes with pages on their way: they are kept and no longer
    count as on their way (were they, nothing would be over the limit), so five pages go
    home on the owner's next connection."""
    srv, a, _x = owner_and_other
    set_limit(srv, 55)
    frames = sent_home(a, 5)
    a.close()
    with srv.client() as reader:  # no PUNTHOME: only replies come here
        reader.hello(OWNER, "reader", features=proto.FEAT_RANGE_INVALIDATE)
        for frame in frames:
            assert reader.get(frame.slot, 1) == (proto.OK, page(frame.slot, 1))
    with srv.client() as again:
        again.hello(OWNER, "owner", features=HOME)
        # nothing goes home before the first request past HELLO: a client may read the
        # reply to it first (nswap.ko's purge of a first connection does)
        tag = again.send(proto.GETPAGE, slot=frames[0].slot, generation=1)
        again.settimeout(5)
        first = again.recv()
        assert (first.type, first.tag) == (proto.GETPAGE | proto.REPLY, tag), first
        assert len(set(take_all(again, 5))) == 5
    assert srv.status()["used_pages"] == 55


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"slot": 999}, r"PUNTPAGE reply for no page sent home on this connection"),
        ({"hop_count": 2}, r"PUNTPAGE reply for no page sent home on this connection"),
        ({"status": proto.EINVAL}, r"PUNTPAGE reply status 7, must be OK, ESTALE or ENOSPC"),
        ({"client_id": OTHER}, r"PUNTPAGE reply for client_id 0xc0c0 on a connection of 0xa0a0"),
        ({"flags": proto.F_NOREPLY}, r"PUNTPAGE reply with a payload, crc, flags"),
    ],
)
def test_a_bad_answer_is_a_protocol_violation(owner_and_other, fields, reason):
    """An answer that matches nothing sent home, or is malformed, closes the connection;
    the page it named stays (readable, and goes home again later)."""
    srv, a, _x = owner_and_other
    set_limit(srv, 59)
    (frame,) = sent_home(a, 1, quiet=0)
    answer(a, frame, **fields)
    assert srv.wait_log(reason)
    a.settimeout(5)
    with pytest.raises(proto.ConnectionClosed):
        for _frame in range(3):  # a malformed answer gets EPROTO first (section 9)
            assert a.recv().status == proto.EPROTO
    assert srv.status()["used_pages"] == 60


def test_an_answer_without_punthome_is_a_reply_from_a_client(owner_and_other):
    srv, _a, x = owner_and_other
    x.send(proto.PUNTPAGE | proto.REPLY, slot=0, generation=1, hop_count=1)
    assert srv.wait_log(re.escape("reply-type frame (type 0x86) from a client"))


def test_no_page_goes_home_before_the_first_request_is_answered(start_server):
    """nswap.ko reads the reply to its first request past HELLO (the purge, a range
    INVALIDATE of every slot) on its own: no page may come home ahead of it, also now that
    a wide range is done in steps (on this 1 GiB cache: 8 turns of the event loop)."""
    srv = start_server("--cache-size", "1G", "--loops", "1")
    with srv.client() as a:
        a.hello(OWNER, "owner", features=HOME)
        for s in range(200):
            assert a.put(s, 1, page(s, 1)) == proto.OK
    set_limit(srv, 100)  # 100 over the limit, to go home once the owner is back
    with srv.client() as b:
        b.hello(OWNER, "owner again", features=HOME)
        tag = b.invalidate_frame(0, proto.GEN_ANY, count=proto.MAX_RANGE_COUNT)
        b.settimeout(10)
        first = b.recv()
        assert (first.type, first.tag, first.status) == (
            proto.INVALIDATE | proto.REPLY,
            tag,
            proto.OK,
        ), first
    with srv.client() as ctl:
        assert ctl.status().used_pages == 0  # the purge dropped them, none is left to go
