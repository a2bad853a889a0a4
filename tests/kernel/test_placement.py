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

import pytest

from harness import minivm, nswapd
from tests.integration.test_nswapd_gossip import free_tcp_port
from tests.kernel.test_nswap_kmod import HOST_SUITE, KIT_IDS, boot_user_net, passed

pytestmark = pytest.mark.vm

HOST = minivm.USER_NET_HOST_IP
PAGES = 1024
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
dd if=/dev/nswap0 of=/tmp/back bs=64K count=%(count_64k)d iflag=direct 2>/dev/null || fail "read"
cmp -s /tmp/data /tmp/back && echo "verified=1" || echo "verified=0"
counters
teardown
"""


def place_with_stale_hints(kit, nswap_ko, nswapd_bin, reply_hint_ms):
    """(guest counters, NAME=VALUE lines, A's STATUS, B's STATUS) of the run above."""
    ports = free_tcp_port("0.0.0.0"), free_tcp_port("0.0.0.0")
    guest = GUEST_STALE_HINTS % dict(
        host=HOST,
        a=ports[0],
        b=ports[1],
        pages=PAGES,
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
    assert values["verified"] == 1, result.output[-3000:]
    assert counters["lost_pages"] == 0 and counters["errors"] == 0, counters
    assert "UNLOADED clean" in result.output
    return counters, a_status, b_status


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_replies_figures_keep_pages_off_a_server_its_stale_hint_calls_empty(
    kit, nswap_ko, nswapd_bin
):
    counters, a, b = place_with_stale_hints(kit, nswap_ko, nswapd_bin, 60000)
    # every reply carried the room and every page went to a server first time
    assert counters["free_hints"] == counters["puts"] == PAGES, counters
    assert counters["retries"] == 0, counters
    # placed by the true room both fill alike: A takes about 1,024 x 256 / 16,640 = 16 pages
    # (by the stale hints it took 256 and then answered ENOSPC), B the rest
    assert a["capacity_pages"] == A_PAGES and a["errors"] == 0, a
    assert 1 <= a["puts"] <= 3 * PAGES * A_PAGES // (A_PAGES + B_PAGES), a
    assert b["errors"] == 0 and a["puts"] + b["puts"] == PAGES, b
