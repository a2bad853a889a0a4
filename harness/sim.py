"""The cluster simulator (src/sim): build it, run it, read its JSON.

nswap-sim drives nswapd's own gossip code and the shared placement rule for N nodes in
virtual time; gossip-test is the unit test program of that code.  Used by
tests/unit/sim and benchmarks/cluster_sim.py.
"""

import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM_DIR = os.path.join(REPO, "src", "sim")
SIM_BIN = os.path.join(SIM_DIR, "nswap-sim")
TEST_BIN = os.path.join(SIM_DIR, "gossip-test")
BUILD_TIMEOUT_S = 300


class SimError(Exception):
    pass


def build():
    """Build nswap-sim and gossip-test (``make -C src/sim``); return (sim, test) paths."""
    proc = subprocess.run(
        ["make", "-C", SIM_DIR, "all"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise SimError(
            f"building the simulator failed (make -C {SIM_DIR}, exit {proc.returncode}):\n"
            + (proc.stdout[-2000:] + proc.stderr[-3000:]).strip()
        )
    return SIM_BIN, TEST_BIN


def run(*args, timeout=1800, sim=SIM_BIN):
    """Run nswap-sim with ``args`` (strings); return its JSON as a dict."""
    proc = subprocess.run(
        [sim, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise SimError(
            f"nswap-sim {' '.join(map(str, args))} exited {proc.returncode}: "
            + proc.stderr[-2000:].strip()
        )
    return json.loads(proc.stdout)
