"""A scripted nswap server for the migration tests: it stores pages like nswapd (in a dict),
grants NSWAP_FEAT_MIGRATION (and, if asked, NSWAP_FEAT_PUNTHOME) in HELLO, records every
frame it receives, and sends frames the test composes (UPDATE, PUNTPAGE home) on a client's
connection.

It stands in for "server C" of docs/protocol.md 11.1: the test copies a page into it
(``store``) and makes it tell the client that it holds the page (``send_update``), in any
order, duplicated or stale; or it sends a page home (``send_home``), well-formed or not.  It
runs in the test's own process on loopback; a mini VM with ``net="user"`` reaches it at
10.0.2.2.

Only what nswap.ko sends is served: HELLO, PUTPAGE, GETPAGE, INVALIDATE (single and range,
NOREPLY and HOP honoured), STATUS.  Anything else is recorded and not answered.
"""

import socket
import struct
import threading

from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

ACCEPT_POLL_S = 0.2
FEATURES = proto.FEAT_RANGE_INVALIDATE | proto.FEAT_MIGRATION


class Peer:
    """``Peer(grant_migration=True)``: listening on 127.0.0.1:``port`` (ephemeral) until
    ``close()``.  ``pages[(client_id, slot)] = (generation, data)``; ``frames`` is every
    frame received, as Frame objects, in order."""

    def __init__(self, grant_migration=True, capacity_pages=65536, grant_home=False):
        self.features = FEATURES if grant_migration else proto.FEAT_RANGE_INVALIDATE
        if grant_home:
            self.features |= proto.FEAT_PUNTHOME
        self.capacity = capacity_pages
        self.lock = threading.Lock()
        self.pages = {}
        self.hops = {}  # (client_id, slot) -> hop_count of the stored copy
        self.frames = []
        self.conns = []  # (socket, send lock) of every client connection
        self.errors = []
        self.stopping = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(ACCEPT_POLL_S)
        self.port = self.sock.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    # --- what the test calls ---

    def store(self, client_id, slot, generation, data, hop_count=0):
        with self.lock:
            self.pages[(client_id, slot)] = (generation, bytes(data))
            self.hops[(client_id, slot)] = hop_count

    def send_update(self, client_id, slot, generation, hop_count):
        """An UPDATE frame on the first client connection that said HELLO."""
        self._send_first(
            proto.encode_frame(
                proto.UPDATE,
                client_id=client_id,
                slot=slot,
                generation=generation,
                hop_count=hop_count,
            )
        )

    def send_home(self, client_id, slot, generation, hop_count, data, tag, **fields):
        """A page sent home: PUNTPAGE (no REPLY bit) on the first client connection; the
        client's answer is recorded among ``frames`` (type PUNTPAGE | REPLY)."""
        self._send_first(
            proto.encode_frame(
                proto.PUNTPAGE,
                data,
                tag=tag,
                client_id=client_id,
                slot=slot,
                generation=generation,
                hop_count=hop_count,
                **fields,
            )
        )

    def _send_first(self, frame):
        with self.lock:
            conns = list(self.conns)
        if not conns:
            raise AssertionError("no client is connected to send a frame to")
        sock, send_lock = conns[0]
        with send_lock:
            sock.sendall(frame)

    def received(self, msg_type):
        with self.lock:
            return [f for f in self.frames if f.type == msg_type]

    def close(self):
        self.stopping.set()
        with self.lock:
            conns = list(self.conns)
        for sock, _ in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self.threads:
            thread.join(timeout=10)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- serving ---

    def _accept(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _recv(self, sock, size):
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _serve(self, sock):
        send_lock = threading.Lock()
        try:
            while not self.stopping.is_set():
                head = self._recv(sock, proto.HDR_SIZE)
                hdr = proto.decode_header(head)
                payload = self._recv(sock, hdr.length) if hdr.length else b""
                frame = proto.Frame(hdr, payload)
                with self.lock:
                    self.frames.append(frame)
                reply = self._answer(frame, sock, send_lock)
                if reply is not None:
                    with send_lock:
                        self._send_reply(sock, frame, reply)
        except (ConnectionError, OSError, proto.ProtocolError) as exc:
            if not self.stopping.is_set() and not isinstance(exc, ConnectionError):
                self.errors.append(repr(exc))
        finally:
            with self.lock:
                self.conns = [c for c in self.conns if c[0] is not sock]
            sock.close()

    def _send_reply(self, sock, frame, reply):
        """Send `reply` to `frame` (send lock held); a subclass may send something else."""
        sock.sendall(reply)

    def _reply(self, f, status=proto.OK, payload=b""):
        return proto.encode_frame(
            f.type | proto.REPLY,
            payload,
            tag=f.tag,
            client_id=f.client_id,
            slot=f.slot,
            generation=f.generation,
            status=status,
            hop_count=f.hop_count,
        )

    def _answer(self, f, sock, send_lock):
        key = (f.client_id, f.slot)
        if f.type == proto.HELLO:
            hello = proto.decode_hello(f.payload)
            payload = proto.HELLO_STRUCT.pack(
                proto.PROTO_VERSION,
                proto.PROTO_VERSION,
                hello.features & self.features,
                self.capacity,
                b"migrationpeer",
            )
            with self.lock:
                self.conns.append((sock, send_lock))
            return self._reply(f, payload=payload)
        if f.type == proto.PUTPAGE:
            self.store(f.client_id, f.slot, f.generation, f.payload, f.hop_count)
            return self._reply(f)
        if f.type == proto.GETPAGE:
            with self.lock:
                held = self.pages.get(key)
            if held is None:
                return self._reply(f, proto.ENOENT)
            if held[0] != f.generation:
                return self._reply(f, proto.ESTALE)
            return self._reply(f, payload=held[1])
        if f.type == proto.INVALIDATE:
            count = struct.unpack("<Q", f.payload)[0] if f.flags & proto.F_RANGE else 1
            hop = f.hop_count if f.flags & proto.F_HOP else proto.MAX_HOPS
            with self.lock:
                for k in [
                    k
                    for k, (gen, _) in self.pages.items()
                    if k[0] == f.client_id
                    and f.slot <= k[1] < f.slot + count
                    and (
                        f.generation == proto.GEN_ANY
                        or gen < f.generation
                        or (gen == f.generation and self.hops[k] <= hop)
                    )
                ]:
                    del self.pages[k]
            return None if f.flags & proto.F_NOREPLY else self._reply(f)
        if f.type == proto.STATUS:
            return self._reply(f, payload=proto.encode_status(capacity_pages=self.capacity))
        return None
