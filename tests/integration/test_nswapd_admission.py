"""Who may hold a connection to nswapd before HELLO (src/nswapd/admission.h), and the keyed
hash behind it and the page table (src/nswapd/siphash.c).

Issue "No page lost when a node dies, and no one outside the cluster gets in" found that
256 sockets that never send HELLO locked every new client out, local STATUS included, for
as long as they stayed open.  Now such connections are bounded per address and in all, the
node's own loopback tools are not held to the bound in all, and each is closed
hello_timeout ms after it was accepted.  The peers here are distinct addresses on the
loopback of a private network namespace; traffic stays in it.
"""

import json
import os
import subprocess
import sys

import pytest

from harness import netns, nobody, nswapd
from tests.integration.test_nswapd import _have_netns

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NSWAPD_SRC = os.path.join(REPO, "src", "nswapd")
PEERS = ["10.254.78.%d" % i for i in (1, 2, 3)]

# Run inside the namespace: opens silent connections and reports what became of them.
FLOOD = r"""
import json, socket, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as p
port, a, b, c = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def silent(src):
    return socket.create_connection((a, port), timeout=5, source_address=(src, 0))

def state(s, wait):
    s.settimeout(wait)
    try:
        return "closed" if s.recv(1) == b"" else "data"
    except socket.timeout:
        return "open"
    except ConnectionResetError:
        return "closed"

out = {}
held = [silent(a), silent(a)]            # the per-address budget of a: 2
out["third_from_a"] = state(silent(a), 3)
held += [silent(b), silent(b)]           # 4 in all: max_pending
time.sleep(0.7)                          # older than 500 ms: may be evicted
held.append(silent(c))                   # one more: taken, and the oldest goes
out["oldest"] = state(held[0], 3)
with p.Client("127.0.0.1", port, timeout=5) as local:  # root on the node itself
    out["local_status_used"] = local.status().used_pages
out["held_meanwhile"] = [state(s, 0.05) for s in held[1:]]
out["held_later"] = [state(s, 20) for s in held[1:]]
with p.Client(a, port, timeout=5, source_address=(c, 0)) as late:
    late.hello(0xC0FFEE, "late")
    page = bytes(range(256)) * 16
    out["late_put"] = late.put(1, 1, page)
    out["late_get_ok"] = late.get(1, 1) == (p.OK, page)
print(json.dumps(out))
"""


@pytest.mark.skipif(not _have_netns(), reason="needs root and ip netns")
def test_silent_connections_are_bounded_per_address_and_in_all_then_closed(nswapd_bin):
    args = ["--cache-size", "64K", "--max-pending", "4", "--max-pending-per-address", "2"]
    args += ["--hello-timeout", "3000", "--loops", "1"]  # one loop: one oldest
    with netns.loopback_only("nswap-adm", PEERS) as (_ns, inside):
        with nswapd.running(nswapd_bin, *args, listen="0.0.0.0:0", command=inside) as srv:
            r = subprocess.run(
                inside([sys.executable, "-c", FLOOD, nobody.COLLECTIONS, str(srv.port), *PEERS]),
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
            out = json.loads(r.stdout)
            log = srv.log_text()
            assert out["third_from_a"] == "closed", out  # refused at once: a's budget is spent
            assert out["oldest"] == "closed", out  # a fifth pending one evicted the oldest
            assert out["local_status_used"] == 0, out  # the node's own tools still get in
            assert out["held_meanwhile"] == ["open"] * 4, (out, log)
            assert out["held_later"] == ["closed"] * 4, out  # at hello_timeout
            assert (out["late_put"], out["late_get_ok"]) == (0, True), out  # room again
            assert srv.wait_log(r"10\.254\.78\.1:\d+: refused: 2 connections from this address")
            assert srv.wait_log(
                r"10\.254\.78\.1:\d+: closed: more than max_pending \(4\) connections have not "
                r"said HELLO; the oldest goes \(1 closed so far\)"
            ), log
            assert srv.wait_log(r"closed: no HELLO within hello_timeout \(3000 ms; 1 closed so far")
            assert srv.stop() == 0


OTHER_USER_FLOOD = r"""
import json, socket, sys
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=("127.0.0.%d" % (2 + i), 0)) for i in range(3)]
out = []
for s in socks:
    s.settimeout(1.0)
    try:
        out.append("closed" if s.recv(1) == b"" else "data")
    except socket.timeout:
        out.append("open")
    except ConnectionResetError:
        out.append("closed")
print(json.dumps(out))
"""


@pytest.mark.skipif(not nobody.available(), reason="needs root, setpriv and /usr/bin/python3")
def test_other_local_users_share_one_budget_and_root_still_gets_in(start_server):
    """Every loopback address is the same host: another local user gets one budget for all
    of them, and cannot keep root's tools out (root is not counted)."""
    srv = start_server("--max-pending-per-address", "2", "--max-pending", "2")
    with srv.connect() as s1, srv.connect() as s2, srv.connect() as s3:  # root: not counted
        for s in (s1, s2, s3):
            s.settimeout(0.3)
            with pytest.raises(TimeoutError):
                s.recv(1)  # all three held open
        r = nobody.run(OTHER_USER_FLOOD, srv.port)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == ["open", "open", "closed"]  # from 127.0.0.2, .3, .4
        with srv.client() as tool:  # root's STATUS still gets in
            assert tool.status().capacity_pages > 0
    assert srv.wait_log(r"127\.0\.0\.4:\d+: refused: 2 connections from other local users")


SILENT = r"""
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
start = time.monotonic()
print("closed" if s.recv(1) == b"" else "data", time.monotonic() - start >= 0.15)
"""


@pytest.mark.skipif(not nobody.available(), reason="needs root, setpriv and /usr/bin/python3")
def test_only_silent_connections_are_closed_at_the_timeout(start_server):
    """A client that said HELLO stays; so does root's tool that polls STATUS without
    HELLO; another user's silent connection is closed at hello_timeout."""
    srv = start_server("--hello-timeout", "200")
    with srv.client(0x51) as c, srv.client() as tool:
        r = nobody.run(SILENT, srv.port)
        assert r.stdout.split() == ["closed", "True"], (r.stdout, r.stderr)
        assert c.put(1, 1, bytes(4096)) == 0 and c.status().clients == 1
        assert tool.status().used_pages == 1  # held well past 200 ms
    assert srv.wait_log(r"closed: no HELLO within hello_timeout \(200 ms")


SIPHASH_TEST = r"""
#include <stdio.h>
#include <string.h>
#include "siphash.h"
int main(void)
{
	struct siphash_key k;
	unsigned char key[16], in[64];

	for (int i = 0; i < 16; i++)
		key[i] = (unsigned char)i;
	for (int i = 0; i < 64; i++)
		in[i] = (unsigned char)i;
	memcpy(k.k, key, 16);
	for (int len = 0; len < 64; len++)
		printf("%016llx\n", (unsigned long long)siphash(&k, in, (size_t)len));
	uint64_t a, b;
	memcpy(&a, in, 8);
	memcpy(&b, in + 8, 8);
	printf("%016llx\n", (unsigned long long)siphash_2u64(&k, a, b));
	return 0;
}
"""


def siphash24_reference(key, data):
    """SipHash-2-4 from the paper, in Python: the independent implementation to compare."""
    mask = (1 << 64) - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D]
    v += [k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rounds(n):
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask
            v[1] = rotl(v[1], 13) ^ v[0]
            v[0] = rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask
            v[3] = rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & mask
            v[3] = rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & mask
            v[1] = rotl(v[1], 17) ^ v[2]
            v[2] = rotl(v[2], 32)

    tail = len(data) % 8
    blocks = [int.from_bytes(data[i : i + 8], "little") for i in range(0, len(data) - tail, 8)]
    blocks.append((len(data) & 0xFF) << 56 | int.from_bytes(data[len(data) - tail :], "little"))
    for m in blocks:
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def test_siphash_matches_the_reference_vectors(tmp_path):
    src = tmp_path / "siphash_test.c"
    src.write_text(SIPHASH_TEST)
    binary = tmp_path / "siphash_test"
    subprocess.run(
        ["cc", "-O2", "-Wall", "-Werror", "-I", NSWAPD_SRC, "-o", str(binary), str(src),
         os.path.join(NSWAPD_SRC, "siphash.c")],
        check=True, timeout=120,
    )  # fmt: skip
    got = subprocess.run([str(binary)], capture_output=True, text=True, check=True, timeout=30)
    lines = got.stdout.split()
    key, data = bytes(range(16)), bytes(range(64))
    # the paper's own vectors (Appendix A: 15 bytes; the reference's vectors.h: 0 and 16)
    assert lines[0] == "726fdb47dd0e0e31"
    assert lines[15] == "a129ca6149be45e5"
    assert lines[16] == "3f2acc7f57c29bdb"
    assert lines[:64] == ["%016x" % siphash24_reference(key, data[:n]) for n in range(64)]
    assert lines[64] == lines[16]  # the two-word form is the same function
