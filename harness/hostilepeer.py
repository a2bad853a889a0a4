"""A hostile nswap server for the kernel tests: the scripted server of migrationpeer.py,
whose replies are, for a share of the requests, replaced by malformed ones (seeded, so a
run can be replayed): what nswap.ko's reply parsing must survive from a broken or rogue
server without a crash, an oops or a hang.

Each malformed reply is one of MANGLES, built from the honest reply: CRCs are computed
for the damaged frame unless the damage is the CRC itself, so that the frame passes the
checksums and reaches the checks behind them.
"""

import random
import socket

from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness.migrationpeer import Peer

CLOSE = object()  # close the connection instead of sending


def _frame(fields, payload, hdr_crc=None, crc=None, length=None):
    """Header fields (a dict of HEADER_FIELDS) and payload, with the length and both CRCs
    computed unless given."""
    fields = dict(fields, length=len(payload) if length is None else length)
    fields["crc"] = (proto.crc32c(payload) if payload else 0) if crc is None else crc
    if hdr_crc is None:
        return proto.Header(**fields).pack() + payload
    return proto.Header(**dict(fields, hdr_crc=hdr_crc)).pack(fix_crc=False) + payload


def _fields(reply):
    return proto.decode_header(reply, verify=False).as_dict()


class Mangles:
    """The malformed replies, each a method (rng, fields, payload) -> bytes or CLOSE."""

    def tag(self, rng, f, p):
        return _frame(dict(f, tag=rng.choice([f["tag"] + 1, rng.getrandbits(64), 0])), p)

    def type(self, rng, f, p):
        return _frame(dict(f, type=rng.choice([f["type"] & 0x7F, rng.randrange(256)])), p)

    def status(self, rng, f, p):
        return _frame(dict(f, status=rng.choice([rng.randrange(16), 0xFFFF])), p)

    def short_payload(self, rng, f, p):
        return _frame(f, p[: rng.randrange(len(p))] if p else b"\0" * rng.randrange(1, 64))

    def long_payload(self, rng, f, p):
        return _frame(f, p + rng.randbytes(rng.choice([1, 8, 4096])))

    def page_for_no_page(self, rng, f, p):  # a payload where none is due, or a page twice
        return _frame(f, rng.randbytes(proto.PAGE_SIZE))

    def length_beyond_payload(self, rng, f, p):  # the header promises more than comes
        return _frame(f, p, length=rng.choice([len(p) + 1, proto.MAX_PAYLOAD + 1, 0xFFFFFFFF]))

    def bad_crc(self, rng, f, p):
        return _frame(f, p, crc=rng.getrandbits(32)) if p else _frame(f, p, hdr_crc=1)

    def bad_hdr_crc(self, rng, f, p):
        return _frame(f, p, hdr_crc=rng.getrandbits(32))

    def bad_magic_version(self, rng, f, p):
        return _frame(dict(f, magic=rng.getrandbits(32), version=rng.randrange(256)), p)

    def truncated_then_close(self, rng, f, p):
        whole = _frame(f, p)
        return whole[: rng.randrange(1, len(whole))], CLOSE

    def twice(self, rng, f, p):
        whole = _frame(f, p)
        return whole + whole

    def update_first(self, rng, f, p):  # an unsolicited UPDATE, well-formed or not
        update = dict(
            f, type=proto.UPDATE, tag=0, status=0, flags=0, slot=rng.getrandbits(64),
            generation=rng.choice([0, 1, f["generation"], rng.getrandbits(64)]),
            hop_count=rng.randrange(20),
        )  # fmt: skip
        return _frame(update, b"") + _frame(f, p)

    def puntpage_first(self, rng, f, p):  # a page sent home the client never offered
        punt = dict(f, type=proto.PUNTPAGE, tag=rng.getrandbits(64), status=0, flags=0,
                    hop_count=rng.randrange(20))  # fmt: skip
        return _frame(punt, rng.randbytes(rng.choice([proto.PAGE_SIZE, 100]))) + _frame(f, p)

    def garbage_first(self, rng, f, p):
        return rng.randbytes(rng.randrange(1, 200)) + _frame(f, p)

    def close(self, rng, f, p):
        return CLOSE


MANGLES = [name for name in vars(Mangles) if not name.startswith("_")]


class HostilePeer(Peer):
    """``HostilePeer(seed, share, switch_slot)``: a Peer whose replies (HELLO's included)
    are replaced, each with probability `share`, by one of MANGLES chosen at random.  Once
    a PUTPAGE of `switch_slot` arrives, it turns to lying only: every page it sends in a
    GETPAGE reply is another page, in a sound frame.  ``sent`` counts the replies sent
    honest, each mangle used and the pages swapped after the switch."""

    def __init__(self, seed, share=0.3, switch_slot=None, **kwargs):
        super().__init__(grant_home=True, **kwargs)
        self.rng = random.Random(seed)
        self.share = share
        self.switch_slot = switch_slot
        self.lying = False
        self.mangles = Mangles()
        self.sent = {"honest": 0}

    def _send_reply(self, sock, frame, reply):
        f = _fields(reply)
        with self.lock:
            if frame.type == proto.PUTPAGE and frame.slot == self.switch_slot:
                self.lying = True
            if self.lying:
                name = "wrong_page" if f["type"] == proto.GETPAGE | proto.REPLY else None
                name = name if f["status"] == proto.OK and f["length"] else None
            else:
                name = self.rng.choice(MANGLES) if self.rng.random() < self.share else None
            seed = self.rng.getrandbits(64)
            self.sent[name or "honest"] = self.sent.get(name or "honest", 0) + 1
        if name == "wrong_page":
            sock.sendall(_frame(f, random.Random(seed).randbytes(proto.PAGE_SIZE)))
            return
        if name is None:
            sock.sendall(reply)
            return
        out = getattr(self.mangles, name)(random.Random(seed), f, reply[proto.HDR_SIZE :])
        if isinstance(out, tuple):  # bytes, then close
            sock.sendall(out[0])
            out = out[1]
        if out is CLOSE:
            sock.shutdown(socket.SHUT_RDWR)
            return
        sock.sendall(out)
