"""A private network namespace with only its loopback, holding extra addresses: peers that
are distinct addresses without any traffic leaving the namespace."""

import contextlib
import os
import subprocess


@contextlib.contextmanager
def loopback_only(prefix, addresses):
    """Yields (name, wrap): the namespace, with lo up and ``addresses`` (/32) on it, and
    wrap(argv) -> argv that runs there; deleted when the block ends."""
    ns = "%s-%d" % (prefix, os.getpid())
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
        for addr in addresses:
            subprocess.run(
                ["ip", "-n", ns, "addr", "add", addr + "/32", "dev", "lo"], check=True, timeout=10
            )
        yield ns, lambda argv: ["ip", "netns", "exec", ns, *argv]  # ip execs: same pid
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)
