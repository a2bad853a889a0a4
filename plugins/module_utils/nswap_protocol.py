# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nswap wire protocol in pure Python: constants, CRC-32C, frame codec, client.

This mirrors ``src/include/nswap_proto.h`` (a unit test parses that header and
checks every constant here against it); ``docs/protocol.md`` is the prose
specification.  Standard library only, so Ansible modules can ship it.

Every frame is a 56-byte little-endian header followed by ``length`` payload
bytes.  ``hdr_crc`` is the CRC-32C of header bytes 0..51 and ``crc`` the
CRC-32C of the payload (0 when there is none).  A reply has type
``request type | REPLY`` and echoes the request's tag.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import socket
import struct

# --- constants (names are the C names without the NSWAP_ prefix) -------------

MAGIC = 0x5057534E  # bytes "NSWP" on the wire
PROTO_VERSION = 1
PROTO_MIN_VERSION = 1
PAGE_SIZE = 4096
HDR_SIZE = 56
MAX_PAYLOAD = PAGE_SIZE + 256
DEFAULT_PORT = 7405

# message types
HELLO = 1
PUTPAGE = 2
GETPAGE = 3
INVALIDATE = 4
STATUS = 5
PUNTPAGE = 6  # server -> server: a page moved (docs/protocol.md 11.1)
UPDATE = 7  # server -> client: where a moved page is now
GOSSIP = 8  # UDP datagrams between nswapd only (gossip membership); never on TCP
SET_CACHE_LIMIT = 9  # loopback peers only; payload <Q pages, reply payload = STATUS
REPLY = 0x80

# header flags
F_RANGE = 1 << 0
F_NOREPLY = 1 << 1
F_HOP = 1 << 2  # INVALIDATE: only copies (generation, hop_count) or older (needs migration)
F_SWEEP = 1 << 3  # INVALIDATE: only PUTPAGE copies (hop 0) of generation or older (needs sweep)
F_AUTH = 1 << 8  # reserved
F_ENCRYPTED = 1 << 9  # reserved

# reply status codes
OK = 0
ENOENT = 1
ESTALE = 2
ENOSPC = 3
EBADCRC = 4
EPROTO = 5
EVERSION = 6
EINVAL = 7
ESHUTDOWN = 8
EPERM = 9

# HELLO feature bits
FEAT_RANGE_INVALIDATE = 1 << 0
FEAT_MIGRATION = 1 << 1  # PUNTPAGE/UPDATE
FEAT_AUTH = 1 << 2  # reserved
FEAT_ENCRYPTION = 1 << 3  # reserved
FEAT_CACHE_LIMIT = 1 << 4
FEAT_SWEEP = 1 << 5
FEAT_PUNTHOME = 1 << 6  # the client takes pages sent home (PUNTPAGE from the server)
FEAT_FREE_HINT = 1 << 7  # a PUTPAGE reply (OK, ENOSPC) carries the server's room

# STATUS state_flags bits
STATE_OVER_LIMIT = 1 << 0  # more pages stored than the limit: new slots get ENOSPC
STATE_DRAINING = 1 << 1  # SET_CACHE_LIMIT 0: no new page, every page moves to other servers

# gossip membership states (enum nswap_member_state); higher wins at one incarnation
MEMBER_ALIVE = 0
MEMBER_SUSPECT = 1  # a probe went unanswered; dead unless refuted
MEMBER_DEAD = 2
MEMBER_LEFT = 3  # said goodbye
GOSSIP_MAX_ENTRIES = 24  # entries per GOSSIP datagram

# Not in the C header: conveniences of this module.
GEN_ANY = 0xFFFFFFFFFFFFFFFF  # INVALIDATE generation that matches every page
MAX_RANGE_COUNT = 1 << 32  # largest slot count of a range INVALIDATE (docs/protocol.md)
MAX_HOPS = 15  # largest hop_count of a migrated page

TYPE_NAMES = {
    HELLO: "HELLO",
    PUTPAGE: "PUTPAGE",
    GETPAGE: "GETPAGE",
    INVALIDATE: "INVALIDATE",
    STATUS: "STATUS",
    PUNTPAGE: "PUNTPAGE",
    UPDATE: "UPDATE",
    GOSSIP: "GOSSIP",
    SET_CACHE_LIMIT: "SET_CACHE_LIMIT",
}
# as nswapd names them (gossip_state_name, its table file and logs)
MEMBER_STATE_NAMES = {
    MEMBER_ALIVE: "alive",
    MEMBER_SUSPECT: "suspect",
    MEMBER_DEAD: "dead",
    MEMBER_LEFT: "left",
}
STATUS_NAMES = {
    OK: "OK",
    ENOENT: "ENOENT",
    ESTALE: "ESTALE",
    ENOSPC: "ENOSPC",
    EBADCRC: "EBADCRC",
    EPROTO: "EPROTO",
    EVERSION: "EVERSION",
    EINVAL: "EINVAL",
    ESHUTDOWN: "ESHUTDOWN",
    EPERM: "EPERM",
}

# --- wire layouts -------------------------------------------------------------

HEADER_FIELDS = (
    "magic",
    "version",
    "type",
    "flags",
    "tag",
    "client_id",
    "slot",
    "generation",
    "length",
    "crc",
    "status",
    "hop_count",
    "reserved",
    "hdr_crc",
)
HEADER_STRUCT = struct.Struct("<IBBHQQQQIIHBBI")
HDR_CRC_OFFSET = 52  # hdr_crc covers bytes 0..51
HELLO_STRUCT = struct.Struct("<HHIQ32s")
HELLO_SIZE = HELLO_STRUCT.size
STATUS_FIELDS = (
    "capacity_pages",
    "used_pages",
    "clients",
    "puts",
    "gets",
    "invalidates",
    "get_misses",
    "errors",
    "bytes_in",
    "bytes_out",
    "uptime_s",
    # appended after the first release; None when an older server sends 88 bytes
    "limit_pages",
    "state_flags",
    # appended with page migration (docs/protocol.md 11.1); None from a 104-byte STATUS
    "punts_received",
    "punts_sent",
    "updates_sent",
    "overflows",
    # appended with punting home (docs/protocol.md 11.1); None from a 136-byte STATUS
    "punts_home",
)
STATUS_STRUCT = struct.Struct("<%dQ" % len(STATUS_FIELDS))
STATUS_SIZE = STATUS_STRUCT.size
STATUS_V1_SIZE = 88  # the STATUS payload of the first release
NAME_LEN = 32
GOSSIP_ENTRY_FIELDS = (
    "node_id",
    "addr",  # dotted-quad string here; big-endian (network order) on the wire
    "port",
    "state",
    "flags",
    "incarnation",
    "heartbeat",
    "capacity_pages",
    "free_pages",
    "load",
    "reserved",
)
GOSSIP_ENTRY_STRUCT = struct.Struct("<Q4sHBBIIQQII")
GOSSIP_ENTRY_SIZE = GOSSIP_ENTRY_STRUCT.size

Hello = collections.namedtuple(
    "Hello", ("min_version", "max_version", "features", "capacity_pages", "name")
)
StatusReply = collections.namedtuple("StatusReply", STATUS_FIELDS)
PUT_REPLY_FIELDS = ("free_pages", "capacity_pages")
PUT_REPLY_STRUCT = struct.Struct("<QQ")
PutReply = collections.namedtuple("PutReply", PUT_REPLY_FIELDS)
GossipEntry = collections.namedtuple("GossipEntry", GOSSIP_ENTRY_FIELDS)


class NswapError(Exception):
    """Base class of this module's errors."""


class ProtocolError(NswapError):
    """Malformed input: a frame or payload that breaks the protocol."""


class ConnectionClosed(NswapError):
    """The peer closed the connection (possibly mid-frame)."""


class StatusError(NswapError):
    """A reply carried a non-OK status where OK was required."""

    def __init__(self, message, status, frame=None):
        super(StatusError, self).__init__(message)
        self.status = status
        self.frame = frame


def type_name(msg_type):
    base = TYPE_NAMES.get(msg_type & ~REPLY, "type %d" % (msg_type & ~REPLY))
    return base + ("|REPLY" if msg_type & REPLY else "")


def status_name(status):
    return STATUS_NAMES.get(status, "status %d" % status)


# --- CRC-32C ------------------------------------------------------------------


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _bit in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli) of ``data``, as Linux ``crc32c(~0, ..) ^ ~0``.

    Pass a previous result as ``crc`` to continue over more data.
    """
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    for b in bytearray(data):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --- header -------------------------------------------------------------------


class Header(object):
    """A decoded frame header; field names as in ``struct nswap_hdr``."""

    __slots__ = HEADER_FIELDS

    def __init__(self, **fields):
        unknown = set(fields) - set(HEADER_FIELDS)
        if unknown:
            raise TypeError("unknown header field(s): %s" % ", ".join(sorted(unknown)))
        for name in HEADER_FIELDS:
            setattr(self, name, 0)
        self.magic = MAGIC
        self.version = PROTO_VERSION
        for name, value in fields.items():
            setattr(self, name, value)

    def pack(self, fix_crc=True):
        """Encode to 56 bytes; computes ``hdr_crc`` unless ``fix_crc`` is false."""
        values = [getattr(self, name) for name in HEADER_FIELDS]
        try:
            raw = HEADER_STRUCT.pack(*values)
        except struct.error as exc:
            raise ProtocolError("header field out of range: %s (%r)" % (exc, self))
        if fix_crc:
            self.hdr_crc = crc32c(raw[:HDR_CRC_OFFSET])
            raw = raw[:HDR_CRC_OFFSET] + struct.pack("<I", self.hdr_crc)
        return raw

    @classmethod
    def unpack(cls, data, verify=True):
        """Decode 56 bytes.  With ``verify``: check magic and ``hdr_crc``."""
        if len(data) < HDR_SIZE:
            raise ProtocolError("short header: %d of %d bytes" % (len(data), HDR_SIZE))
        raw = bytes(data[:HDR_SIZE])
        hdr = cls()
        for i, value in enumerate(HEADER_STRUCT.unpack(raw)):
            setattr(hdr, HEADER_FIELDS[i], value)
        if verify:
            if hdr.magic != MAGIC:
                raise ProtocolError("bad magic 0x%08x" % hdr.magic)
            if crc32c(raw[:HDR_CRC_OFFSET]) != hdr.hdr_crc:
                raise ProtocolError("bad header crc 0x%08x" % hdr.hdr_crc)
            if hdr.length > MAX_PAYLOAD:
                raise ProtocolError(
                    "length %d exceeds MAX_PAYLOAD (%d)" % (hdr.length, MAX_PAYLOAD)
                )
        return hdr

    def as_dict(self):
        return dict((name, getattr(self, name)) for name in HEADER_FIELDS)

    def __eq__(self, other):
        return isinstance(other, Header) and self.as_dict() == other.as_dict()

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "Header(%s, %s)" % (
            type_name(self.type),
            ", ".join("%s=%r" % (n, getattr(self, n)) for n in HEADER_FIELDS if n != "type"),
        )


def encode_header(**fields):
    return Header(**fields).pack()


def decode_header(data, verify=True):
    return Header.unpack(data, verify=verify)


def encode_frame(msg_type, payload=b"", crc=None, **fields):
    """A whole frame: header (``length``, ``crc``, ``hdr_crc`` filled in) + payload.

    ``crc`` overrides the payload checksum (to build deliberately bad frames);
    extra keyword arguments set header fields.
    """
    payload = bytes(payload)
    if crc is None:
        crc = crc32c(payload) if payload else 0
    hdr = Header(type=msg_type, length=len(payload), crc=crc, **fields)
    return hdr.pack() + payload


class Frame(object):
    """A received frame: ``header`` plus ``payload`` bytes."""

    __slots__ = ("header", "payload")

    def __init__(self, header, payload=b""):
        self.header = header
        self.payload = payload

    def __getattr__(self, name):
        if name in HEADER_FIELDS:
            return getattr(self.header, name)
        raise AttributeError(name)

    def check_crc(self):
        expect = crc32c(self.payload) if self.payload else 0
        if expect != self.header.crc:
            raise ProtocolError(
                "payload crc mismatch in %s tag %d" % (type_name(self.header.type), self.header.tag)
            )

    def __repr__(self):
        return "Frame(%r, %d payload bytes)" % (self.header, len(self.payload))


def decode_frame(data, verify=True):
    """Decode one complete frame from ``data``; returns (Frame, bytes used)."""
    hdr = Header.unpack(data, verify=verify)
    end = HDR_SIZE + hdr.length
    if len(data) < end:
        raise ProtocolError("short frame: %d of %d bytes" % (len(data), end))
    frame = Frame(hdr, bytes(data[HDR_SIZE:end]))
    if verify:
        frame.check_crc()
    return frame, end


# --- payloads -----------------------------------------------------------------


def encode_hello(
    min_version=PROTO_MIN_VERSION,
    max_version=PROTO_VERSION,
    features=0,
    capacity_pages=0,
    name="",
):
    if not isinstance(name, bytes):
        name = name.encode("utf-8")
    if len(name) > NAME_LEN - 1:
        raise ProtocolError("name longer than %d bytes" % (NAME_LEN - 1))
    try:
        return HELLO_STRUCT.pack(min_version, max_version, features, capacity_pages, name)
    except struct.error as exc:
        raise ProtocolError("HELLO field out of range: %s" % exc)


def decode_hello(payload):
    """Decode a HELLO payload; a longer payload is accepted (future fields)."""
    if len(payload) < HELLO_SIZE:
        raise ProtocolError("HELLO payload is %d bytes, needs %d" % (len(payload), HELLO_SIZE))
    lo, hi, features, capacity, name = HELLO_STRUCT.unpack(bytes(payload[:HELLO_SIZE]))
    name = name.split(b"\0", 1)[0].decode("utf-8", "replace")
    return Hello(lo, hi, features, capacity, name)


def encode_status(**counters):
    return STATUS_STRUCT.pack(*[counters.get(name, 0) for name in STATUS_FIELDS])


def decode_status(payload):
    """Decode a STATUS reply; fields are only ever appended, extra bytes ignored.

    A payload of an older server lacks the appended fields; they are None.
    """
    size = len(payload)
    if size < STATUS_V1_SIZE or (size < STATUS_SIZE and size % 8):
        raise ProtocolError(
            "STATUS payload is %d bytes, needs %d (or %d or more, a multiple of 8, from older "
            "servers)" % (size, STATUS_SIZE, STATUS_V1_SIZE)
        )
    count = min(size, STATUS_SIZE) // 8
    values = struct.unpack("<%dQ" % count, bytes(payload[: count * 8]))
    return StatusReply(*(values + (None,) * (len(STATUS_FIELDS) - count)))


def encode_put_reply(free_pages, capacity_pages):
    return PUT_REPLY_STRUCT.pack(free_pages, capacity_pages)


def decode_put_reply(payload):
    """The room a PUTPAGE reply carries with FEAT_FREE_HINT (docs/protocol.md 5.2)."""
    if len(payload) != PUT_REPLY_STRUCT.size:
        raise ProtocolError(
            "PUTPAGE reply payload is %d bytes, needs %d (FEAT_FREE_HINT) or none"
            % (len(payload), PUT_REPLY_STRUCT.size)
        )
    reply = PutReply(*PUT_REPLY_STRUCT.unpack(bytes(payload)))
    if reply.free_pages > reply.capacity_pages:
        raise ProtocolError("PUTPAGE reply says %d pages free of %d" % reply)
    return reply


def encode_cache_limit(pages):
    """SET_CACHE_LIMIT payload: the limit in pages."""
    try:
        return struct.pack("<Q", pages)
    except struct.error as exc:
        raise ProtocolError("cache limit out of range: %s" % exc)


def encode_gossip_entry(
    node_id,
    addr,
    port,
    state=MEMBER_ALIVE,
    incarnation=0,
    heartbeat=0,
    capacity_pages=0,
    free_pages=0,
    load=0,
    flags=0,
    reserved=0,
):
    """One 48-byte membership entry of a GOSSIP datagram (``addr``: dotted quad).

    Only the layout is checked here, not the rules nswapd applies (nonzero id,
    free <= capacity, ...): tests use it to build entries that break them.
    """
    try:
        raw_addr = socket.inet_pton(socket.AF_INET, addr)
    except (socket.error, TypeError, ValueError):
        raise ProtocolError("not an IPv4 address: %r" % (addr,))
    try:
        return GOSSIP_ENTRY_STRUCT.pack(
            node_id,
            raw_addr,
            port,
            state,
            flags,
            incarnation,
            heartbeat,
            capacity_pages,
            free_pages,
            load,
            reserved,
        )
    except struct.error as exc:
        raise ProtocolError("gossip entry field out of range: %s" % exc)


def decode_gossip_entries(payload):
    """The entries of a GOSSIP payload: a list of GossipEntry (``addr`` a dotted quad)."""
    size = len(payload)
    if not size or size % GOSSIP_ENTRY_SIZE or size // GOSSIP_ENTRY_SIZE > GOSSIP_MAX_ENTRIES:
        raise ProtocolError(
            "GOSSIP payload is %d bytes, not 1 to %d entries of %d"
            % (size, GOSSIP_MAX_ENTRIES, GOSSIP_ENTRY_SIZE)
        )
    entries = []
    for off in range(0, size, GOSSIP_ENTRY_SIZE):
        values = list(GOSSIP_ENTRY_STRUCT.unpack(bytes(payload[off : off + GOSSIP_ENTRY_SIZE])))
        values[1] = socket.inet_ntop(socket.AF_INET, values[1])
        entries.append(GossipEntry(*values))
    return entries


def encode_gossip(sender_id, entries, tag=0, reply=False, **fields):
    """A whole GOSSIP datagram: ``entries`` are encoded entries (bytes), the sender's
    own first; ``tag`` is the sender's round.  Extra keyword arguments set header
    fields (and ``crc`` the payload checksum), to build deliberately bad datagrams."""
    msg_type = GOSSIP | (REPLY if reply else 0)
    return encode_frame(msg_type, b"".join(entries), tag=tag, client_id=sender_id, **fields)


# --- client -------------------------------------------------------------------


class Client(object):
    """A small blocking client for one connection to an nswap server.

    Simple calls (``hello``, ``put``, ``get``, ``invalidate``, ``status``) send
    one request and wait for its reply.  For pipelining, ``send`` returns the
    tag it used and ``recv`` returns replies in arrival order;
    ``wait(tags)`` collects the replies to a set of tags.  Replies that arrive
    while a simple call waits for its own are kept for later ``wait``/``recv``.
    """

    def __init__(self, host=None, port=DEFAULT_PORT, timeout=5.0, source_address=None):
        self.sock = None
        self.client_id = 0
        self.version = PROTO_VERSION
        self.features = 0
        self.server = None  # Hello from the server, after hello()
        self._next_tag = 1
        self._buf = bytearray()
        self._early = collections.OrderedDict()  # tag -> Frame received while waiting
        if host is not None:
            self.connect(host, port, timeout, source_address)

    # connection ---------------------------------------------------------------

    def connect(self, host, port=DEFAULT_PORT, timeout=5.0, source_address=None):
        self.sock = socket.create_connection(
            (host, port), timeout=timeout, source_address=source_address
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        return self

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # raw frames ---------------------------------------------------------------

    def new_tag(self):
        tag = self._next_tag
        self._next_tag += 1
        return tag

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, msg_type, payload=b"", tag=None, **fields):
        """Send one request; returns its tag.  Header fields may be overridden."""
        if tag is None:
            tag = self.new_tag()
        fields.setdefault("client_id", self.client_id)
        fields.setdefault("version", self.version)
        self.send_raw(encode_frame(msg_type, payload, tag=tag, **fields))
        return tag

    def _fill(self, n):
        while len(self._buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise ConnectionClosed(
                    "connection closed by peer (%d bytes of a frame pending)" % len(self._buf)
                )
            self._buf.extend(chunk)

    def recv(self, verify=True):
        """Next frame from the connection (or one kept from an earlier wait)."""
        if self._early:
            return self._early.popitem(last=False)[1]
        return self._recv_wire(verify)

    def _recv_wire(self, verify=True):
        self._fill(HDR_SIZE)
        hdr = Header.unpack(self._buf[:HDR_SIZE], verify=verify)
        self._fill(HDR_SIZE + hdr.length)
        frame = Frame(hdr, bytes(self._buf[HDR_SIZE : HDR_SIZE + hdr.length]))
        del self._buf[: HDR_SIZE + hdr.length]
        if verify:
            frame.check_crc()
        return frame

    def wait(self, tags):
        """Replies to all ``tags`` (any arrival order), as a dict tag -> Frame."""
        want = set(tags)
        got = {}
        for tag in list(want):
            if tag in self._early:
                got[tag] = self._early.pop(tag)
        while len(got) < len(want):
            frame = self._recv_wire()
            if frame.header.tag in want and frame.header.tag not in got:
                got[frame.header.tag] = frame
            else:
                self._early[frame.header.tag] = frame
        return got

    def request(self, msg_type, payload=b"", **fields):
        """Send one request and return its reply Frame."""
        tag = self.send(msg_type, payload, **fields)
        frame = self.wait([tag])[tag]
        if frame.header.type != msg_type | REPLY:
            raise ProtocolError(
                "reply to %s tag %d has type %s"
                % (type_name(msg_type), tag, type_name(frame.header.type))
            )
        return frame

    # protocol operations -------------------------------------------------------

    def hello(
        self,
        client_id,
        name="",
        min_version=PROTO_MIN_VERSION,
        max_version=PROTO_VERSION,
        features=FEAT_RANGE_INVALIDATE,
    ):
        """Negotiate; returns the server's Hello.  StatusError if refused."""
        payload = encode_hello(min_version, max_version, features, 0, name)
        frame = self.request(HELLO, payload, client_id=client_id, version=max_version)
        if frame.header.status != OK:
            raise StatusError(
                "HELLO refused: %s" % status_name(frame.header.status),
                frame.header.status,
                frame,
            )
        reply = decode_hello(frame.payload)
        self.client_id = client_id
        self.version = frame.header.version
        self.features = reply.features
        self.server = reply
        return reply

    def put_frame(self, slot, generation, data, hop_count=0, **fields):
        if len(data) != PAGE_SIZE:
            raise ProtocolError("a page is %d bytes, got %d" % (PAGE_SIZE, len(data)))
        return self.send(
            PUTPAGE, data, slot=slot, generation=generation, hop_count=hop_count, **fields
        )

    def put(self, slot, generation, data, hop_count=0):
        """Store a page; returns the reply status (OK, ESTALE, ENOSPC, ...)."""
        tag = self.put_frame(slot, generation, data, hop_count)
        return self.wait([tag])[tag].header.status

    def get_frame(self, slot, generation, **fields):
        return self.send(GETPAGE, slot=slot, generation=generation, **fields)

    def get(self, slot, generation):
        """Fetch a page; returns (status, data) with data None unless OK."""
        tag = self.get_frame(slot, generation)
        frame = self.wait([tag])[tag]
        if frame.header.status != OK:
            return frame.header.status, None
        if len(frame.payload) != PAGE_SIZE:
            raise ProtocolError("GETPAGE reply has %d bytes" % len(frame.payload))
        return OK, frame.payload

    def invalidate_frame(self, slot, generation=GEN_ANY, count=None, noreply=False, **fields):
        flags = F_NOREPLY if noreply else 0
        payload = b""
        if count is not None:
            flags |= F_RANGE
            payload = struct.pack("<Q", count)
        return self.send(
            INVALIDATE, payload, slot=slot, generation=generation, flags=flags, **fields
        )

    def invalidate(self, slot, generation=GEN_ANY, count=None, noreply=False):
        """Drop a page (or ``count`` slots from ``slot``) if its generation is <= ours.

        Returns the reply status, or None with ``noreply``.
        """
        tag = self.invalidate_frame(slot, generation, count, noreply)
        if noreply:
            return None
        return self.wait([tag])[tag].header.status

    def status(self):
        """Server counters as a StatusReply."""
        frame = self.request(STATUS)
        if frame.header.status != OK:
            raise StatusError(
                "STATUS failed: %s" % status_name(frame.header.status),
                frame.header.status,
                frame,
            )
        return decode_status(frame.payload)

    def set_cache_limit(self, pages):
        """Set the server's cache limit (loopback connections only).

        Returns (status, StatusReply or None): OK with the new state, EINVAL
        with the state that names the bound (capacity_pages), EPERM (from a
        non-loopback address) without one.
        """
        frame = self.request(SET_CACHE_LIMIT, encode_cache_limit(pages))
        status = frame.header.status
        return status, (decode_status(frame.payload) if frame.payload else None)
