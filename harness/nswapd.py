"""nswapd for tests and benchmarks: build it, start it, wait until it listens, read its log,
ask its STATUS, stop it.

One fixture for every place that runs a real memory server: the protocol tests (loopback),
the kernel tests and the data-path benchmark (inside the network namespace of a mini VM's
tap, through ``command``), and the module tests.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import bootstrap

NSWAPD_DIR = os.path.join(bootstrap.REPO, "src", "nswapd")
BUILD_TIMEOUT_S = 300
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
# nswapd's start-up line names the address it bound, so port 0 (ephemeral) works.
_LISTENING_RE = r"listening on [0-9a-fA-F.:\[\]]*:(\d+)"


class NswapdError(Exception):
    """nswapd could not be built, started or stopped; the message carries its output."""


def build(target="nswapd"):
    """Path of nswapd built from src/nswapd (``make -C src/nswapd nswapd``); target
    ``nswapd-static`` for a mini VM's initramfs.

    NSWAPD_BIN names another binary to test instead (e.g. a sanitizer build); it is not built.
    """
    override = os.environ.get("NSWAPD_BIN")
    if override and target == "nswapd":
        if not os.access(override, os.X_OK):
            raise NswapdError(f"NSWAPD_BIN={override} is not an executable file")
        return override
    proc = subprocess.run(
        ["make", "-C", NSWAPD_DIR, target],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    binary = os.path.join(NSWAPD_DIR, target)
    if proc.returncode != 0 or not os.access(binary, os.X_OK):
        raise NswapdError(
            f"building {target} failed (make -C {NSWAPD_DIR} {target}, exit {proc.returncode}):\n"
            + (proc.stdout[-2000:] + proc.stderr[-3000:]).strip()
        )
    return binary


class Nswapd:
    """One nswapd process in the foreground, its output (stdout and stderr) collected.

    ``command`` wraps the argv to run it elsewhere, e.g. ``TapNetwork.command`` (``ip netns
    exec``) or a ``taskset`` prefix; the wrapper must exec nswapd, so that ``pid`` is nswapd
    itself.  The constructor returns once nswapd logs that it listens; ``port`` is the port
    it bound (``listen`` may ask for port 0).
    """

    def __init__(self, binary, *args, listen="127.0.0.1:0", command=None, env=None,
                 start_timeout=START_TIMEOUT_S):  # fmt: skip
        host = listen.rpartition(":")[0]
        # A server bound to every address is reached on loopback, from where it runs.
        self.host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.command = command or (lambda argv: argv)
        self.argv = self.command([str(binary), "--foreground", "--listen", listen, *map(str, args)])
        self.proc = subprocess.Popen(
            self.argv,
            env=dict(os.environ, **(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = []
        self._cond = threading.Condition()
        # Read all the time, not at stop: a pipe nobody reads would block nswapd's logging.
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        match = self.wait_log(_LISTENING_RE, start_timeout)
        if not match:
            rc = self.proc.poll()
            self.kill()
            why = (
                f"exited with status {rc} at start"
                if rc is not None
                else f"did not start listening within {start_timeout:.0f} s"
            )
            raise NswapdError(f"nswapd {why}: {' '.join(self.argv)}\n{self.log_text()}")
        self.port = int(match.group(1))

    @property
    def pid(self):
        return self.proc.pid

    def _read_output(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def log_text(self):
        with self._cond:
            return "\n".join(self.lines)

    def wait_log(self, pattern, timeout=5.0):
        """First match of ``pattern`` in a log line, waiting up to ``timeout`` seconds;
        None when it did not come (or nswapd exited without it)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    match = rx.search(line)
                    if match:
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return None
                self._cond.wait(min(left, 0.2))

    def connect(self, timeout=10.0):
        """A plain TCP connection to it from this process (for raw frames)."""
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def client(self, client_id=None, name="harness", timeout=10.0):
        """A protocol client connected from this process (after HELLO if ``client_id``)."""
        c = proto.Client(self.host, self.port, timeout=timeout)
        if client_id is not None:
            c.hello(client_id, name)
        return c

    def status(self, check=True):
        """STATUS counters as a dict, asked from where nswapd runs (through ``command``, so
        a server inside a namespace is reached); None on failure unless ``check``."""
        code = (
            "import json, sys; sys.path.insert(0, %r);"
            "from ansible_collections.nswap.cluster.plugins.module_utils "
            "import nswap_protocol as p;"
            "c = p.Client(%r, %d, timeout=5); print(json.dumps(c.status()._asdict()))"
            % (bootstrap.COLLECTIONS, self.host, self.port)
        )
        proc = subprocess.run(
            self.command([sys.executable, "-c", code]),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            if check:
                raise NswapdError(f"STATUS from nswapd on port {self.port} failed:\n{proc.stderr}")
            return None
        return json.loads(proc.stdout)

    def wait_status(self, field, at_least, timeout=600, interval=0.1):
        """Poll STATUS until ``field`` is at least ``at_least`` (a test's host thread
        waiting for its guest's traffic); its STATUS then, or AssertionError at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status[field] >= at_least:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"nswapd on port {self.port}: {field} {status[field]}, never {at_least} "
                    f"within {timeout} s"
                )
            time.sleep(interval)

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM and wait; returns the exit status.  One that does not exit in ``timeout``
        is killed and NswapdError says so (a drain that never ends is a bug)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise NswapdError(
                f"nswapd did not exit within {timeout:.0f} s of SIGTERM:\n{self.log_text()}"
            ) from None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)


@contextlib.contextmanager
def running(binary, *args, **kwargs):
    """An Nswapd for the ``with`` block, stopped (then killed if need be) when it ends."""
    server = Nswapd(binary, *args, **kwargs)
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            server.kill()
