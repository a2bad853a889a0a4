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


def seeds():
    yield (
        "basic",
        bytes([PEER])
        + b"".join(
            [hello()]
            + [put(s, tag=10 + s) for s in range(4)]
            + [frame(p.GETPAGE, client_id=CID, slot=s, generation=1, tag=20 + s) for s in range(5)]
            + [frame(p.STATUS, tag=30)]
            + [frame(p.INVALIDATE, client_id=CID, slot=1, generation=1, tag=31)]
            + [
                frame(
                    p.INVALIDATE,
                    (8).to_bytes(8, "little"),
                    client_id=CID,
                    slot=0,
                    generation=p.GEN_ANY,
                    flags=p.F_RANGE,
                    tag=32,
                )
            ]  # fmt: skip
            + [frame(p.GETPAGE, client_id=CID, slot=2, generation=1, tag=33)]
        ),
    )
    # more pages than the harness's cache: ENOSPC, free hints; then a wide range
    yield (
        "full",
        bytes([PEER])
        + b"".join(
            [hello()]
            + [put(s, tag=s) for s in range(80)]
            + [
                frame(
                    p.INVALIDATE,
                    (1 << 32).to_bytes(8, "little"),
                    client_id=CID,
                    slot=0,
                    generation=p.GEN_ANY,
                    flags=p.F_RANGE | p.F_NOREPLY,
                )
            ]  # fmt: skip
            + [put(s, 2, tag=100 + s) for s in range(8)]
        ),
    )
    # the node's own tools: STATUS and SET_CACHE_LIMIT without HELLO, then with it
    yield (
        "admin",
        bytes([LOOPBACK | ADMIN])
        + b"".join(
            [frame(p.STATUS, tag=1), frame(p.SET_CACHE_LIMIT, p.encode_cache_limit(16), tag=2)]
            + [hello(features=p.FEAT_CACHE_LIMIT | p.FEAT_PUNTHOME, tag=3)]
            + [put(s, tag=10 + s) for s in range(12)]
            + [frame(p.SET_CACHE_LIMIT, p.encode_cache_limit(4), tag=4)]
            + [frame(p.PUNTPAGE | p.REPLY, client_id=CID, slot=s, generation=1) for s in range(4)]
            + [frame(p.SET_CACHE_LIMIT, p.encode_cache_limit(0), tag=5), frame(p.STATUS, tag=6)]
            + [frame(p.SET_CACHE_LIMIT, p.encode_cache_limit(64), tag=7)]
        ),
    )
    # a server moving pages here (PUNTPAGE) and its owner's sweep and hop-aware drops
    yield (
        "migration",
        bytes([PEER])
        + b"".join(
            [hello(features=p.FEAT_MIGRATION | p.FEAT_SWEEP, cid=0xB0B)]
            + [
                rec(
                    p.encode_frame(
                        p.PUNTPAGE,
                        page(s),
                        client_id=CID,
                        slot=s,
                        generation=3,
                        hop_count=1,
                        tag=40 + s,
                    )
                )
                for s in range(3)
            ]  # fmt: skip
            + [
                frame(
                    p.INVALIDATE,
                    client_id=CID,
                    slot=0,
                    generation=3,
                    hop_count=1,
                    flags=p.F_HOP,
                    tag=50,
                )
            ]  # fmt: skip
            + [
                frame(
                    p.INVALIDATE,
                    (4).to_bytes(8, "little"),
                    client_id=CID,
                    slot=0,
                    generation=9,
                    flags=p.F_RANGE | p.F_SWEEP,
                    tag=51,
                )
            ]  # fmt: skip
        ),
    )
    # damaged on purpose: a payload CRC kept wrong (EBADCRC), then no HELLO at all
    yield (
        "damaged",
        bytes([PEER])
        + hello()
        + rec(
            p.encode_frame(p.PUTPAGE, page(1), crc=0xDEADBEEF, client_id=CID, slot=1, generation=1),
            keep_crc=True,
        )
        + put(2),
    )
    yield "no-hello", bytes([PEER]) + put(1) + frame(p.STATUS)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: corpus.py DIR")
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(sys.argv[1], "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
