"""A faulty middlebox for the nswap protocol, for fault tests: it forwards every byte from its
clients to one nswapd unchanged, and nswapd's replies back frame by frame, except that it
drops the reply to every Nth PUTPAGE/GETPAGE (at most --max-drops of them).  The server stays
alive and keeps answering; only those requests go unanswered, as with a lossy peer.  With
--delay-ms it holds those replies for that long instead of dropping them, and picks among
PUTPAGE replies only: a write the server has taken but whose answer is late, as on a
congested path (its connection's later replies wait behind it, as in TCP).  With --corrupt it
flips one byte in the page of every Nth GETPAGE reply that carries one and forwards it (the
header and its payload CRC unchanged): a page damaged on the way, which the client must
detect and read again, never hand to the process that swapped it.

Run it where the server is reachable, e.g. inside a mini VM's network namespace::

    ip netns exec NS python3 -m harness.faultproxy --listen 10.77.5.1:7405 \\
        --server 127.0.0.1:7406 --drop-every 2000 --max-drops 6

It prints ``listening on HOST:PORT`` once it accepts connections and, on SIGTERM or SIGINT,
one JSON line ``{"connections": C, "replies": R, "dropped": D, "delayed": L, "corrupted": X}``,
then exits 0.
Used in Python through ``running()``.
"""

import argparse
import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time

from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import bootstrap

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
ACCEPT_POLL_S = 0.2
DROPPABLE = {proto.PUTPAGE | proto.REPLY, proto.GETPAGE | proto.REPLY}
DELAYABLE = {proto.PUTPAGE | proto.REPLY}
CORRUPTIBLE = {proto.GETPAGE | proto.REPLY}  # those with a page
_LENGTH = proto.HEADER_FIELDS.index("length")
_TYPE = proto.HEADER_FIELDS.index("type")


class FaultProxyError(Exception):
    """The proxy did not start or stop as it should; the message carries its output."""


class Dropper:
    """Which replies to drop (or, with delay_s, hold for delay_s; with corrupt, damage): the
    Nth, 2Nth, ... of the replies it may pick, over all connections, at most max_drops."""

    def __init__(self, every, max_drops, delay_s=0.0, corrupt=False):
        self.every = every
        self.max_drops = max_drops
        self.delay_s = delay_s
        self.corrupt = corrupt
        # re-entrant: the SIGTERM handler (summary) may run while this thread holds it
        self.lock = threading.RLock()
        self.connections = 0
        self.replies = 0
        self.dropped = 0
        self.delayed = 0
        self.corrupted = 0

    def _candidates(self):
        if self.corrupt:
            return CORRUPTIBLE
        return DELAYABLE if self.delay_s else DROPPABLE

    def pick(self, msg_type, payload=b""):
        """True when this reply is picked (dropped, delayed or corrupted, by the mode)."""
        if msg_type not in self._candidates() or (self.corrupt and not payload):
            return False
        with self.lock:
            self.replies += 1
            picked = self.dropped + self.delayed + self.corrupted
            if picked < self.max_drops and self.replies % self.every == 0:
                if self.corrupt:
                    self.corrupted += 1
                elif self.delay_s:
                    self.delayed += 1
                else:
                    self.dropped += 1
                return True
            return False

    def summary(self):
        with self.lock:
            return {
                "connections": self.connections,
                "replies": self.replies,
                "dropped": self.dropped,
                "delayed": self.delayed,
                "corrupted": self.corrupted,
            }


def _recv_exact(sock, size):
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _close_both(a, b):
    for s in (a, b):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


def _client_to_server(client, server):
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            server.sendall(data)
    except OSError:
        pass
    _close_both(client, server)


def _server_to_client(server, client, dropper):
    try:
        while True:
            hdr = _recv_exact(server, proto.HDR_SIZE)
            if hdr is None:
                break
            fields = proto.HEADER_STRUCT.unpack(hdr)
            payload = _recv_exact(server, fields[_LENGTH]) if fields[_LENGTH] else b""
            if payload is None:
                break
            if dropper.pick(fields[_TYPE], payload):
                if dropper.corrupt:
                    payload = damaged(payload)
                elif dropper.delay_s:
                    time.sleep(dropper.delay_s)
                else:
                    continue
            client.sendall(hdr + payload)
    except OSError:
        pass
    _close_both(client, server)


def damaged(payload):
    """The payload with its middle byte flipped: same length, a CRC that no longer matches."""
    middle = len(payload) // 2
    return payload[:middle] + bytes([payload[middle] ^ 0xFF]) + payload[middle + 1 :]


def _split(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def serve(listen, server_addr, dropper):
    """Accept connections forever (daemon threads carry each one)."""
    family = socket.AF_INET6 if ":" in listen.rpartition(":")[0] else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(_split(listen))
    lsock.listen(64)
    host, port = lsock.getsockname()[:2]
    print("listening on %s:%d" % (host, port), flush=True)
    # SIGTERM may be delivered to any thread; Python runs the handler only in this one, when
    # it runs Python code: a bounded accept() lets it do so (a test run once waited in vain).
    lsock.settimeout(ACCEPT_POLL_S)
    while True:
        try:
            client, _ = lsock.accept()
        except TimeoutError:
            continue
        client.settimeout(None)
        try:
            server = socket.create_connection(_split(server_addr), timeout=10)
        except OSError:
            client.close()
            continue
        server.settimeout(None)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with dropper.lock:
            dropper.connections += 1
        threading.Thread(target=_client_to_server, args=(client, server), daemon=True).start()
        threading.Thread(
            target=_server_to_client, args=(server, client, dropper), daemon=True
        ).start()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT the clients connect to")
    parser.add_argument("--server", required=True, help="HOST:PORT of nswapd")
    parser.add_argument(
        "--drop-every", type=int, required=True, help="drop every Nth PUT/GET reply"
    )
    parser.add_argument("--max-drops", type=int, default=10, help="drop at most this many")
    parser.add_argument(
        "--delay-ms",
        type=int,
        default=0,
        help="hold the picked replies this long instead of dropping them (PUTPAGE replies only)",
    )
    parser.add_argument(
        "--corrupt",
        action="store_true",
        help="damage one byte of the picked replies' page instead (GETPAGE replies with a page)",
    )
    args = parser.parse_args(argv)
    if args.drop_every < 1 or args.max_drops < 0 or args.delay_ms < 0:
        parser.error("--drop-every must be at least 1, --max-drops and --delay-ms at least 0")
    if args.corrupt and args.delay_ms:
        parser.error("--corrupt and --delay-ms pick different replies: give one of them")
    dropper = Dropper(args.drop_every, args.max_drops, args.delay_ms / 1000.0, args.corrupt)

    def stop(_sig, _frame):
        print(json.dumps(dropper.summary()), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    serve(args.listen, args.server, dropper)


@contextlib.contextmanager
def running(listen, server, drop_every, max_drops, command=None, delay_ms=0, corrupt=False):
    """The proxy for the ``with`` block (``command`` prefixes its argv, e.g. to run it in a
    namespace); yields a dict that holds its summary once the block has ended."""
    argv = [sys.executable, "-m", "harness.faultproxy", "--listen", listen, "--server", server]
    argv += ["--drop-every", str(drop_every), "--max-drops", str(max_drops)]
    argv += ["--delay-ms", str(delay_ms)] + (["--corrupt"] if corrupt else [])
    proc = subprocess.Popen(
        (command or list)(argv),
        cwd=bootstrap.REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    summary = {}
    try:
        ready = threading.Event()
        lines = []

        def read_first_line():
            lines.append(proc.stdout.readline())
            ready.set()

        threading.Thread(target=read_first_line, daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or not lines[0].startswith("listening on"):
            raise FaultProxyError("the fault proxy did not start: %r" % "".join(lines))
        yield summary
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=STOP_TIMEOUT_S)
        last = out.strip().splitlines()[-1:] or ["(no output)"]
        try:
            summary.update(json.loads(last[0]))
        except ValueError as err:
            raise FaultProxyError("the fault proxy's summary is not JSON: %r" % out) from err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


if __name__ == "__main__":
    main()
