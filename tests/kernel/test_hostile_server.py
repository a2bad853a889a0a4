"""nswap.ko against a hostile server (issue 14 item 6: the kernel's reply parsing fed
malformed replies): harness/hostilepeer.py answers a share of the requests, HELLO's
included, with a malformed reply of every kind it knows (wrong tag, type, status, length,
CRCs, magic; a payload where none is due, a page twice, a header promising more than
comes; unsolicited UPDATEs, pages sent home, garbage; a cut frame; a closed connection).

The guest writes random data to the raw device page by page and reads back each page
whose write reported success, twice over (the second round rewrites every page).  Then
the server turns to lying: every page it returns is another page in a sound frame (valid
CRC), which only nswap.ko's own record of each page's CRC can tell; each read must fail.
Last the device is powered off and the module unloaded.  What must hold: no oops,
warning or hang in the kernel, the module unloads clean, and every page read without an
error is exactly what was written (an error is allowed: the server is broken).
"""

import pytest

from harness import hostilepeer, minivm
from tests.kernel.test_nswap_kmod import HOST_SUITE, KIT_IDS, boot_user_net, passed

pytestmark = pytest.mark.vm

ROUNDS = 2
PAGES = 128
SHARE = 0.2  # of the replies malformed
SEED = 14
SWITCH_SLOT = 4096  # a write of it turns the server to sending wrong pages only
LIED_READS = 32

# Page by page, so that each page's outcome is known: a write that reported success
# (fsync) must read back as written or fail; never other bytes.  Then the server lies
# (SWITCH_SLOT): each page it returns is another page in a sound frame, and every read
# must fail.
GUEST = r"""
load
create 32M %(host)s:%(port)d 500 6
readback() {  # label, pages listed in /tmp/written: same, differ, unread
    echo 3 > /proc/sys/vm/drop_caches
    same=0; differ=0; unread=0
    for i in $(head -n $2 /tmp/written); do
        if dd if=/dev/nswap0 of=/tmp/back bs=4096 count=1 skip=$i 2>/dev/null; then
            dd if=/tmp/data of=/tmp/want bs=4096 count=1 skip=$i 2>/dev/null
            if cmp -s /tmp/back /tmp/want; then same=$((same + 1)); else differ=$((differ + 1)); fi
        else
            unread=$((unread + 1))
        fi
    done
    echo "$1_same=$same"; echo "$1_differ=$differ"; echo "$1_unread=$unread"
}
r=1
while [ $r -le %(rounds)d ]; do
    dd if=/dev/urandom of=/tmp/data bs=4096 count=%(pages)d 2>/dev/null
    : > /tmp/written
    i=0
    while [ $i -lt %(pages)d ]; do
        dd if=/tmp/data of=/dev/nswap0 bs=4096 count=1 skip=$i seek=$i conv=notrunc,fsync \
            2>/dev/null && echo $i >> /tmp/written
        i=$((i + 1))
    done
    echo "round${r}_written=$(wc -l < /tmp/written)"
    readback round$r %(pages)d
    r=$((r + 1))
done
dd if=/dev/zero of=/dev/nswap0 bs=4096 count=1 seek=%(switch)d conv=notrunc,fsync 2>/dev/null
echo "switch_write=$?"
readback lied %(lied)d
counters
teardown
"""


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_malformed_replies_cost_errors_never_an_oops_or_wrong_bytes(kit, nswap_ko):
    with hostilepeer.HostilePeer(SEED, SHARE, SWITCH_SLOT) as peer:
        result = boot_user_net(
            kit,
            nswap_ko,
            GUEST
            % {
                "host": minivm.USER_NET_HOST_IP,
                "port": peer.port,
                "rounds": ROUNDS,
                "pages": PAGES,
                "switch": SWITCH_SLOT,
                "lied": LIED_READS,
            },
            timeout_s=600,
        )
        sent = dict(peer.sent)
    print("replies sent:", sent)
    counters, values, _ = passed(result)  # exit 0, no oops, warning or stall
    print("rounds:", {k: v for k, v in values.items() if k.startswith("round")})
    print("counters:", counters)
    assert "UNLOADED clean" in result.output
    for r in range(1, ROUNDS + 1):
        assert values["round%d_differ" % r] == 0, (r, values, counters)
    # the run met the hostile server: every kind of malformed reply, and errors for them
    assert set(sent) == {"honest", "wrong_page", *hostilepeer.MANGLES}, sent
    assert counters["errors"] + counters["reconnects"] > 0, counters
    # and the server's honest share still got pages through and back
    assert all(values["round%d_same" % r] > PAGES // 4 for r in range(1, ROUNDS + 1)), values
    # the lying server: each page it sent was refused (read again, then an I/O error)
    assert values["switch_write"] == 0, values
    assert values["lied_same"] == values["lied_differ"] == 0, values
    assert values["lied_unread"] == min(LIED_READS, values["round%d_written" % ROUNDS]), values
    assert counters["wrong_pages"] >= values["lied_unread"] >= 1, counters
