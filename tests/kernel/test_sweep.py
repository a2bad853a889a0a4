"""nswap.ko's dead-page sweep (issue 13 item 7, src/kmod/nswap_sweep.c): copies a server
keeps of slots the client's slot map does not name (a lost INVALIDATE, a write attempt
stored after all) are dropped by the periodic sweep, and nothing else is.

The guest writes 64 pages to an nswapd on the host; the host then plants, under the
device's client_id, what a sweep must drop -- 100 written copies of slots the device never
wrote -- and what it must keep: a newer copy (a generation above any the device has handed
out, standing for a write still in flight) and a moved copy (hop count 1, standing for a
page whose UPDATE is on its way).  With sweep_interval_s 1 the server must come back to
64 + 2 pages while the device's own pages all read back (by the 8th walk at the latest:
every 8th walk takes every server, the others only those an INVALIDATE was dropped for).
"""

import threading
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import minivm, nswapd
from tests.integration.test_nswapd_gossip import free_tcp_port
from tests.kernel.test_nswap_kmod import HOST_SUITE, KIT_IDS, boot_user_net, passed

pytestmark = pytest.mark.vm

HOST = minivm.USER_NET_HOST_IP
CLIENT_ID = 0x5EED
PAGES, DEAD = 64, 100
NEWER_SLOT, MOVED_SLOT = 3000, 4000

GUEST = r"""
load
mkdir $cfg && echo 64M > $cfg/size && echo %(cid)d > $cfg/client_id || fail "mkdir, size, id"
[ "$(cat $cfg/sweep_interval_s)" = 0 ] || fail "sweep on by default"
echo 86401 > $cfg/sweep_interval_s 2>/dev/null && fail "sweep_interval_s above a day taken"
echo "add %(host)s:%(port)d" > $cfg/servers && echo 1 > $cfg/power || fail "add, power on"
dd if=/dev/urandom of=/tmp/data bs=4096 count=%(pages)d 2>/dev/null
dd if=/tmp/data of=/dev/nswap0 bs=64K oflag=direct conv=notrunc 2>/dev/null || fail "write"
n=/sys/block/nswap0/nswap
echo 1 > $cfg/sweep_interval_s || fail "sweep on"
i=0
while [ $(cat $n/sweeps) -lt 15 ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done
echo 0 > $cfg/sweep_interval_s || fail "sweep off"
dd if=/dev/nswap0 of=/tmp/back bs=64K count=%(pages_64k)d iflag=direct 2>/dev/null || fail "read"
cmp -s /tmp/data /tmp/back && echo "verified=1" || echo "verified=0"
counters
teardown
"""


def plant_then_watch(srv, seen, errors):
    """Once the device's pages are on the server: plant the dead, newer and moved copies,
    then record how many pages the server holds, every 0.2 s while the guest runs."""
    try:
        deadline = time.monotonic() + 300
        srv.wait_status("used_pages", PAGES, timeout=300)
        features = proto.FEAT_RANGE_INVALIDATE | proto.FEAT_MIGRATION
        with srv.client() as owner, srv.client() as other_server:
            owner.hello(CLIENT_ID, "planted", features=features)
            for slot in range(1000, 1000 + DEAD):
                assert owner.put(slot, 1, bytes([slot & 0xFF]) * proto.PAGE_SIZE) == proto.OK
            assert owner.put(NEWER_SLOT, 1 << 40, b"n" * proto.PAGE_SIZE) == proto.OK
            other_server.hello(0xB0B0, "server-b", features=features)
            reply = other_server.request(
                proto.PUNTPAGE, b"m" * proto.PAGE_SIZE, client_id=CLIENT_ID,
                slot=MOVED_SLOT, generation=1, hop_count=1,
            )  # fmt: skip
            assert reply.status == proto.OK
        seen["planted"] = srv.status()["used_pages"]
        seen["used"] = []
        while time.monotonic() < deadline and not seen.get("stop"):
            st = srv.status(check=False)
            if st:
                seen["used"].append(st["used_pages"])
            time.sleep(0.2)
    except Exception as exc:  # noqa: BLE001 -- reported by the test
        errors.append(repr(exc))


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_the_sweep_drops_dead_copies_and_keeps_every_live_one(kit, nswap_ko, nswapd_bin):
    port = free_tcp_port("0.0.0.0")
    seen, errors = {}, []
    with nswapd.running(nswapd_bin, "--cache-size", "4M", listen="0.0.0.0:%d" % port) as srv:
        thread = threading.Thread(target=plant_then_watch, args=(srv, seen, errors), daemon=True)
        thread.start()
        result = boot_user_net(
            kit,
            nswap_ko,
            GUEST
            % dict(
                cid=CLIENT_ID, host=HOST, port=port, pages=PAGES, pages_64k=PAGES // 16
            ),  # fmt: skip
        )
        seen["stop"] = True
        thread.join(timeout=30)
        log = srv.log_text()
    assert not errors, errors
    counters, values, _ = passed(result)
    assert values["verified"] == 1, result.output[-3000:]
    assert seen["planted"] == PAGES + DEAD + 2, seen
    # the dead copies went; the device's pages, the newer and the moved copy stayed (until
    # the power off at the end drops them all)
    used = seen["used"]
    assert PAGES + 2 in used, (used, log[-3000:])
    assert min(used[: used.index(PAGES + 2)], default=PAGES + 2) >= PAGES + 2, used
    assert counters["sweeps"] >= 15 and counters["sweep_invalidates"] > 0, counters
    assert counters["errors"] == 0 and counters["lost_pages"] == 0, counters
    assert "protocol violation" not in log
    assert "UNLOADED clean" in result.output


GUEST_DYING = r"""
load
mkdir $cfg && echo 64M > $cfg/size || fail "mkdir"
echo 1000 > $cfg/timeout_ms && echo 1 > $cfg/retries || fail "timeout, retries"
echo "add %(host)s:%(port_a)d" > $cfg/servers && echo "add %(host)s:%(port_b)d" > $cfg/servers \
    || fail "add"
echo 1 > $cfg/power || fail "power on"
dd if=/dev/urandom of=/tmp/data bs=4096 count=%(pages)d 2>/dev/null
dd if=/tmp/data of=/dev/nswap0 bs=64K oflag=direct conv=notrunc 2>/dev/null || fail "write"
n=/sys/block/nswap0/nswap
grep -o "pages=[0-9]*" $cfg/servers | sed -n '1s/pages=/on_a=/p;2s/pages=/on_b=/p'
echo 1 > $cfg/sweep_interval_s || fail "sweep on"
# the host kills server B during the sweeps; they go on with A alone
i=0
while [ $(cat $n/sweeps) -lt 12 ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done
echo "sweeps_done=$(cat $n/sweeps)"
echo 0 > $cfg/sweep_interval_s || fail "sweep off"
b=0; good=0; bad=0
while [ $b -lt %(blocks)d ]; do
    if dd if=/dev/nswap0 of=/tmp/one bs=64K skip=$b count=1 iflag=direct 2>/dev/null; then
        dd if=/tmp/data of=/tmp/want bs=64K skip=$b count=1 2>/dev/null
        cmp -s /tmp/one /tmp/want && good=$((good+1)) || echo "differs_$b=1"
    else
        bad=$((bad+1))
    fi
    b=$((b+1))
done
echo "good_blocks=$good"
echo "failed_blocks=$bad"
counters
teardown
"""


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_a_server_dying_while_the_sweep_runs_stops_neither_the_sweep_nor_the_device(
    kit, nswap_ko, nswapd_bin
):
    """Two servers, the sweep every second; server B is killed (SIGKILL) once the sweeps
    have begun.  The sweeps go on (12 walks within 2 minutes), every 64 KiB block on A
    reads back byte for byte, each block on B fails with an I/O error (one copy per page
    until issue 14), nothing reads back wrong, and the device powers off and unloads."""
    port_a, port_b = free_tcp_port("0.0.0.0"), free_tcp_port("0.0.0.0")
    errors = []
    with (
        nswapd.running(nswapd_bin, "--cache-size", "4M", listen="0.0.0.0:%d" % port_a) as a,
        nswapd.running(nswapd_bin, "--cache-size", "4M", listen="0.0.0.0:%d" % port_b) as b,
    ):

        def kill_b_once_swept():
            try:
                b.wait_status("used_pages", 1, timeout=300)
                time.sleep(4)  # a few walks (every second) while B is up
                b.kill()
            except Exception as exc:  # noqa: BLE001 -- reported by the test
                errors.append(repr(exc))

        thread = threading.Thread(target=kill_b_once_swept, daemon=True)
        thread.start()
        result = boot_user_net(
            kit,
            nswap_ko,
            GUEST_DYING
            % dict(
                host=HOST, port_a=port_a, port_b=port_b, pages=PAGES, blocks=PAGES // 16
            ),  # fmt: skip
        )
        thread.join(timeout=30)
        a_log = a.log_text()
    assert not errors, errors
    counters, values, _ = passed(result)
    out = result.output
    assert values["on_a"] > 0 and values["on_b"] > 0, out[-3000:]  # both held pages
    assert values["sweeps_done"] >= 12, out[-3000:]
    assert not [k for k in values if k.startswith("differs_")], out[-3000:]
    # 64 KiB writes: each block went whole to one server
    assert values["good_blocks"] * 16 == values["on_a"], out[-3000:]
    assert values["failed_blocks"] * 16 == values["on_b"], out[-3000:]
    assert counters["sweep_invalidates"] > 0, counters
    assert "protocol violation" not in a_log
    assert "UNLOADED clean" in out
