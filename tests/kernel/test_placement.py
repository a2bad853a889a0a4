"""nswap.ko places by the room each PUTPAGE reply reports (NSWAP_FEAT_FREE_HINT,
docs/protocol.md 5.2, docs/placement.md), not only by nswapd's gossip hints, which are
rounds old when they arrive.

Two real nswapd servers on the host, reached from the mini VM at 10.0.2.2: A lends 256
pages, B 16,384.  The guest's hints are stale on purpose (A nearly empty with 100,000
free, B nearly full), as gossip's can be after a burst of other clients' writes.  Placed
by those hints alone, A would take pages until it answers ENOSPC, and again each time
its back-off ends; with the replies' figures the device learns the true room of both
from their first replies and fills them alike: A takes a few pages, not one ENOSPC.
"""

import re

import pytest

from harness import minivm, nswapd
from tests.integration.test_nswapd_gossip import free_tcp_port
from tests.kernel.test_nswap_kmod import HOST_SUITE, KIT_IDS, boot_user_net, passed

pytestmark = pytest.mark.vm

HOST = minivm.USER_NET_HOST_IP
PAGES = 1024
MORE = 32  # written once B is hinted full: all to A, which has room for them
A_PAGES, B_PAGES = 256, 16384  # the caches: 1 MiB, 64 MiB

GUEST_STALE_HINTS = r"""
echo 16384 > /proc/sys/vm/min_free_kbytes
modprobe crc32c_generic 2>/dev/null
# a figure lives longer than the write takes on a loaded host: no expiry mid-test
modprobe nswap reply_hint_ms=%(reply_hint_ms)d || fail "modprobe nswap"
mkdir $cfg && echo 64M > $cfg/size || fail "mkdir, size"
echo "add %(host)s:%(a)d" > $cfg/servers && echo "add %(host)s:%(b)d" > $cfg/servers \
    || fail "add"
echo "hint %(host)s:%(a)d 100000 100000" > $cfg/servers \
    && echo "hint %(host)s:%(b)d 1000 100000" > $cfg/servers || fail "hints"
echo 1 > $cfg/power || fail "power on"
servers_up 2
dd if=/dev/urandom of=/tmp/data bs=4096 count=%(pages)d 2>/dev/null
# one page per request: each placement sees the replies of all before it
dd if=/tmp/data of=/dev/nswap0 bs=4096 oflag=direct conv=notrunc 2>/dev/null || fail "write"
sed 's/^/server /' $cfg/servers
# nswapd says B has no room (full, leaving or dead): that wins over B's fresh reply figure
echo "hint %(host)s:%(b)d 0 100000" > $cfg/servers || fail "hint B full"
dd if=/dev/urandom of=/tmp/more bs=4096 count=%(more)d 2>/dev/null
dd if=/tmp/more of=/dev/nswap0 bs=4096 seek=%(pages)d oflag=direct conv=notrunc 2>/dev/null \
    || fail "write more"
sed 's/^/later /' $cfg/servers
dd if=/dev/nswap0 of=/tmp/back bs=4096 skip=%(pages)d count=%(more)d iflag=direct 2>/dev/null \
    || fail "read more"
cmp -s /tmp/more /tmp/back && echo "verified_more=1" || echo "verified_more=0"
dd if=/dev/nswap0 of=/tmp/back bs=64K count=%(count_64k)d iflag=direct 2>/dev/null || fail "read"
cmp -s /tmp/data /tmp/back && echo "verified=1" || echo "verified=0"
counters
teardown
"""


def place_with_stale_hints(kit, nswap_ko, nswapd_bin, reply_hint_ms):
    """(guest counters, A's STATUS, B's STATUS, {"server" / "later": {"A"/"B": pages}})
    of the run above."""
    ports = free_tcp_port("0.0.0.0"), free_tcp_port("0.0.0.0")
    guest = GUEST_STALE_HINTS % dict(
        host=HOST,
        a=ports[0],
        b=ports[1],
        pages=PAGES,
        more=MORE,
        count_64k=PAGES // 16,
        reply_hint_ms=reply_hint_ms,
    )
    with (
        nswapd.running(nswapd_bin, "--cache-size", "1M", listen="0.0.0.0:%d" % ports[0]) as a,
        nswapd.running(nswapd_bin, "--cache-size", "64M", listen="0.0.0.0:%d" % ports[1]) as b,
    ):
        result = boot_user_net(kit, nswap_ko, guest)
        a_status, b_status = a.status(), b.status()
    counters, values, _ = passed(result)
    assert values["verified"] == 1 and values["verified_more"] == 1, result.output[-3000:]
    assert counters["lost_pages"] == 0 and counters["errors"] == 0, counters
    assert "UNLOADED clean" in result.output
    return counters, a_status, b_status, servers_seen(result.output, ports)


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_replies_figures_keep_pages_off_a_server_its_stale_hint_calls_empty(
    kit, nswap_ko, nswapd_bin
):
    counters, a, b, seen = place_with_stale_hints(kit, nswap_ko, nswapd_bin, 60000)
    # every reply carried the room and every page went to a server first time
    assert counters["free_hints"] == counters["puts"] == PAGES + MORE, counters
    assert counters["retries"] == 0, counters
    # placed by the true room both fill alike: A takes about 1,024 x 256 / 16,640 = 16 pages
    # (by the stale hints it took 256 and then answered ENOSPC), B the rest
    assert a["capacity_pages"] == A_PAGES and a["errors"] == 0, a
    assert 1 <= a["puts"] - MORE <= 3 * PAGES * A_PAGES // (A_PAGES + B_PAGES), a
    assert b["errors"] == 0 and a["puts"] + b["puts"] == PAGES + MORE, b
    # then nswapd's "no room" for B dropped B's reply figure: the next pages all went to A
    first, later = seen["server"], seen["later"]
    assert later["A"] - first["A"] == MORE and later["B"] == first["B"], seen


def servers_seen(output, ports):
    """Pages on A and B in the guest's copies of the servers file, by line prefix."""
    names = dict(zip(ports, "AB", strict=True))
    seen = {"server": {}, "later": {}}
    for prefix, port, pages in re.findall(
        r"^(server|later) \S+:(\d+) \S+ pages=(\d+)", output, re.M
    ):
        seen[prefix][names[int(port)]] = int(pages)
    return seen
