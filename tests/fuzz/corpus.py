#!/usr/bin/env python3
"""Seed inputs for the nswapd fuzz harness (tests/fuzz/nswapd_frames.c), built from the
protocol module, so that no binary file is kept in the repository.

Each seed is a connection of the harness's input layout: a byte saying who the peer is
(bit 0 loopback, bit 1 administrator), then records of [control byte][frame], the control
byte 0 (the harness computes both CRCs) unless the seed wants a CRC kept as it is.

Run:  tests/fuzz/corpus.py DIR     (writes DIR/seed-NAME files; DIR is created)
"""

import importlib
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import harness  # noqa: E402,F401  (makes the checkout the collection)

# importable once harness made the checkout the collection
p = importlib.import_module("ansible_collections.nswap.cluster.plugins.module_utils.nswap_protocol")

PEER = 0
LOOPBACK = 1
ADMIN = 2
ALL_FEATURES = (
    p.FEAT_RANGE_INVALIDATE
    | p.FEAT_MIGRATION
    | p.FEAT_CACHE_LIMIT
    | p.FEAT_SWEEP
    | p.FEAT_PUNTHOME
    | p.FEAT_FREE_HINT
)
CID = 0x5EED


def page(slot, generation=1):
    return bytes((slot * 31 + generation + i) & 0xFF for i in range(p.PAGE_SIZE))


def rec(frame, keep_hdr_crc=False, keep_crc=False):
    return bytes([(1 if keep_hdr_crc else 0) | (2 if keep_crc else 0)]) + frame


def hello(features=ALL_FEATURES, cid=CID, tag=1, **kw):
    return rec(p.encode_frame(p.HELLO, p.encode_hello(features=features, **kw),
                              client_id=cid, tag=tag))  # fmt: skip


def put(slot, generation=1, cid=CID, tag=0, **kw):
    frame = p.encode_frame(
        p.PUTPAGE, page(slot, generation), client_id=cid, slot=slot, generation=generation,
        tag=tag, **kw,
    )  # fmt: skip
    return rec(frame)


def frame(msg_type, payload=b"", **kw):
    return rec(p.encode_frame(msg_type, payload, **kw))


def invalidate(slot, generation, count=None, flags=0, **kw):
    """INVALIDATE of one slot, or with count a range (F_RANGE) of them."""
    if count is None:
        return frame(p.INVALIDATE, client_id=CID, slot=slot, generation=generation,
                     flags=flags, **kw)  # fmt: skip
    return frame(p.INVALIDATE, count.to_bytes(8, "little"), client_id=CID, slot=slot,
                 generation=generation, flags=flags | p.F_RANGE, **kw)  # fmt: skip


def connection(peer, records):
    return bytes([peer]) + b"".join(records)


def seeds():
    yield "basic", connection(PEER, [
        hello(),
        *[put(s, tag=10 + s) for s in range(4)],
        *[frame(p.GETPAGE, client_id=CID, slot=s, generation=1, tag=20 + s) for s in range(5)],
        frame(p.STATUS, tag=30),
        invalidate(1, 1, tag=31),
        invalidate(0, p.GEN_ANY, count=8, tag=32),
        frame(p.GETPAGE, client_id=CID, slot=2, generation=1, tag=33),
    ])  # fmt: skip
    # more pages than the harness's cache: ENOSPC, free hints; then a wide range
    yield "full", connection(PEER, [
        hello(),
        *[put(s, tag=s) for s in range(80)],
        invalidate(0, p.GEN_ANY, count=1 << 32, flags=p.F_NOREPLY),
        *[put(s, 2, tag=100 + s) for s in range(8)],
    ])  # fmt: skip
    # the node's own tools: STATUS and SET_CACHE_LIMIT without HELLO, then with it; pages
    # over the lowered limit sent home and answered
    limit = p.SET_CACHE_LIMIT
    yield "admin", connection(LOOPBACK | ADMIN, [
        frame(p.STATUS, tag=1),
        frame(limit, p.encode_cache_limit(16), tag=2),
        hello(features=p.FEAT_CACHE_LIMIT | p.FEAT_PUNTHOME, tag=3),
        *[put(s, tag=10 + s) for s in range(12)],
        frame(limit, p.encode_cache_limit(4), tag=4),
        *[frame(p.PUNTPAGE | p.REPLY, client_id=CID, slot=s, generation=1) for s in range(4)],
        frame(limit, p.encode_cache_limit(0), tag=5),
        frame(p.STATUS, tag=6),
        frame(limit, p.encode_cache_limit(64), tag=7),
    ])  # fmt: skip
    # a server moving pages here (PUNTPAGE), and the owner's hop-aware drop and sweep
    yield "migration", connection(PEER, [
        hello(features=p.FEAT_MIGRATION | p.FEAT_SWEEP, cid=0xB0B),
        *[frame(p.PUNTPAGE, page(s), client_id=CID, slot=s, generation=3, hop_count=1,
                tag=40 + s) for s in range(3)],
        invalidate(0, 3, hop_count=1, flags=p.F_HOP, tag=50),
        invalidate(0, 9, count=4, flags=p.F_SWEEP, tag=51),
    ])  # fmt: skip
    # damaged on purpose: a payload CRC kept wrong (EBADCRC); and no HELLO at all
    bad_crc = p.encode_frame(p.PUTPAGE, page(1), crc=0xDEADBEEF, client_id=CID, slot=1,
                             generation=1)  # fmt: skip
    yield "damaged", connection(PEER, [hello(), rec(bad_crc, keep_crc=True), put(2)])
    yield "no-hello", connection(PEER, [put(1), frame(p.STATUS)])


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: corpus.py DIR")
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(sys.argv[1], "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
