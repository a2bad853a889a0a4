"""A client whose servers come from gossip only: nswap.ko fed by its node's nswapd.

Three nswapd servers run on the host, in the tap's namespace, each on an address of its own
(gossip binds one UDP port per address).  The mini VM is the client node: its nswapd
(static, in the initramfs) gossips with them knowing one seed address, and with
``client_device nswap0`` it adds the servers of its table to the device through configfs and
writes their free pages as placement hints.  No server list is given anywhere.  Then the
node swaps and every byte is verified; the hints steer the pages (a server hinted full gets
none while the others have room); and every node's table lists the others.
"""

import json
import re
import threading
import time

import pytest

from harness import minivm, nswapd
from tests.kernel.test_nswap_kmod import (
    GUEST_PRELUDE,
    HOST_SUITE,
    KIT_IDS,
    VM_MEMORY_MIB,
    WORKLOAD,
    passed,
)

pytestmark = pytest.mark.vm

PORT = 7405
SERVER_IPS = ["10.99.0.11", "10.99.0.12", "10.99.0.13"]
GUEST_IP = "10.99.0.2"
INTERVAL_MS = 500

GUEST = r"""
load
mkdir $cfg && echo 1G > $cfg/size || fail "mkdir, size"
echo "placement_default=$([ "$(cat $cfg/placement)" = two-choice ] && echo 1 || echo 0)"
# the refusals of the new configfs words, before any server exists
echo "hint %(s0)s:%(port)d 1 2" > $cfg/servers 2>/dev/null && fail "hint of an unknown server"
echo "hint %(s0)s:%(port)d" > $cfg/servers 2>/dev/null && fail "hint without numbers"
echo sideways > $cfg/placement 2>/dev/null && fail "placement sideways"
# this node's own nswapd as a server of the device too (a node that lends and swaps; it
# lends nothing here): hinted from its own announcement, not from the table
echo "add %(guest)s:%(port)d" > $cfg/servers || fail "add this node's server"
nswapd --foreground --listen %(guest)s:%(port)d --cache-size 0 --name client \
    --gossip on --gossip-seeds %(s0)s --gossip-interval %(interval)d \
    --gossip-table-file /tmp/gossip.json --client-device nswap0 --client-servers 8 \
    > /tmp/nswapd.log 2>&1 &
nswapd_pid=$!
i=0
while [ $(grep -c ' hint=' $cfg/servers) -lt 4 ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done
echo "fed_after_s=$i"
sed 's/^/fed /' $cfg/servers
echo "hint %(s0)s:%(port)d 5 4" > $cfg/servers 2>/dev/null && fail "hint free above capacity"
echo 1 > $cfg/power || fail "power on"
swap_on
# both runs in a 96 MiB cgroup: 2 x 96 MiB of W1, one pass (a run over twice the VM's RAM
# cost this test 160 s on a busy host)
limit_memory 96M
run_limited nswap-workload --workload W1 --ratio 2 --passes 1 --seed 21
wl=$!
while kill -0 $wl 2>/dev/null; do sed 's/^/first /' $cfg/servers; sleep 2; done
wait $wl
echo "workload_exit=$?"
cat /tmp/wl.json
sed 's/^/during /' $cfg/servers
echo "table $(cat /tmp/gossip.json | tr -d '\n')"
# Hints alone now: this node's nswapd stops, the first server is hinted full, and a second
# run's pages must all go to the other two while they have room.
kill $nswapd_pid; wait $nswapd_pid
echo "nswapd_exit=$?"
echo "hint %(s0)s:%(port)d 0 65536" > $cfg/servers || fail "hint full"
run_limited nswap-workload --workload W1 --ratio 2 --passes 1 --seed 22
wl=$!
while kill -0 $wl 2>/dev/null; do sed 's/^/sample /' $cfg/servers; sleep 2; done
wait $wl
echo "workload2_exit=$?"
cat /tmp/wl.json
echo "hint %(s0)s:%(port)d none" > $cfg/servers || fail "hint none"
grep -q '%(s0)s:%(port)d .*hint=' $cfg/servers && fail "hint none kept a hint"
counters
sed 's/^/log /' /tmp/nswapd.log
swapoff /dev/nswap0 || fail swapoff
teardown
"""


@pytest.fixture(scope="module")
def nswapd_static():
    return nswapd.build("nswapd-static")


class TableWatch:
    """Reads the servers' table files every 0.5 s while the guest runs and keeps, per
    server, every ADDR:PORT it ever listed ALIVE (the client leaves before the end, and its
    tombstone expires)."""

    def __init__(self, paths):
        self.paths = paths
        self.alive = [set() for _ in paths]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + 1200
        while not self.stop.is_set() and time.monotonic() < deadline:
            for i, path in enumerate(self.paths):
                try:
                    with open(path) as f:
                        table = json.load(f)
                except (OSError, ValueError):
                    continue
                self.alive[i] |= {
                    "%s:%d" % (m["address"], m["port"])
                    for m in table["members"]
                    if m["state"] == "alive"
                }
            self.stop.wait(0.5)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        return self.alive


def server_lines(output, prefix):
    """{ADDR:PORT: {"state", "pages", "hint"}} from the guest's ``prefix`` lines."""
    found = {}
    for name, state, pages, hint in re.findall(
        r"^%s (\S+) (\S+) pages=(-?\d+)(?: hint=(\S+))?$" % prefix, output, re.M
    ):
        found[name] = {"state": state, "pages": int(pages), "hint": hint or None}
    return found


def samples(output, prefix="sample"):
    """Per sample the guest took (lines "PREFIX ADDR:PORT STATE pages=N ..."):
    {ADDR:PORT: pages}."""
    rounds, current = [], {}
    for name, pages in re.findall(r"^%s (\S+) \S+ pages=(-?\d+)" % prefix, output, re.M):
        if name in current:
            rounds.append(current)
            current = {}
        current[name] = int(pages)
    if current:
        rounds.append(current)
    return rounds


@pytest.mark.parametrize("kit", [HOST_SUITE], ids=KIT_IDS[:1], indirect=True)
def test_a_client_finds_three_servers_by_gossip_and_swaps_every_byte_back(
    kit, nswap_ko, nswapd_bin, nswapd_static, workload, tmp_path
):
    names = ["%s:%d" % (ip, PORT) for ip in SERVER_IPS]
    gossip = ["--gossip", "on", "--gossip-seeds", SERVER_IPS[0], "--gossip-interval", INTERVAL_MS]
    with minivm.netns_with_tap("kmodgossip") as tapnet:
        for ip in SERVER_IPS:
            minivm._ip(["-n", tapnet.netns, "addr", "add", ip + "/24", "dev", tapnet.tap])
        tables = [str(tmp_path / ("table-%d.json" % i)) for i in range(3)]
        servers = [
            nswapd.Nswapd(
                nswapd_bin,
                "--cache-size",
                "512M",
                "--name",
                "server%d" % i,
                *gossip,
                "--gossip-table-file",
                tables[i],
                listen="%s:%d" % (ip, PORT),
                command=tapnet.command,
            )  # fmt: skip
            for i, ip in enumerate(SERVER_IPS)
        ]
        watch = TableWatch(tables)
        try:
            result = minivm.run_script(
                kit,
                GUEST_PRELUDE
                + GUEST
                % {"s0": SERVER_IPS[0], "port": PORT, "guest": GUEST_IP, "interval": INTERVAL_MS},
                modules=[nswap_ko, "crc32c_generic"],
                files={"/bin/nswap-workload": WORKLOAD, "/bin/nswapd": nswapd_static},
                memory_mib=VM_MEMORY_MIB,
                net=tapnet.nettap,
                timeout_s=900,
            )
            puts = [server.status()["puts"] for server in servers]
        finally:
            listed = watch.close()
            for server in servers:
                server.stop()
    counters, values, runs = passed(result)
    out = result.output
    assert values["placement_default"] == 1

    # fed: the three servers, hinted with their free pages, none given by hand; this
    # node's own server (added by hand) hinted with its own room, none
    fed = server_lines(out, "fed")
    own = "%s:%d" % (GUEST_IP, PORT)
    assert fed.pop(own)["hint"] == "0/0", out[-4000:]
    assert sorted(fed) == names, out[-4000:]
    for name in names:
        free, capacity = map(int, fed[name]["hint"].split("/"))
        assert capacity == (512 << 20) // 4096 and 0 < free <= capacity, fed
    assert 0 <= values["fed_after_s"] < 120

    # every byte back; pages on all three servers, by the hints
    assert values["workload_exit"] == 0 and values["workload2_exit"] == 0, out[-4000:]
    assert [r["mismatched_pages"] for r in runs] == [0, 0], runs
    assert runs[0]["bytes_verified"] == runs[0]["size_bytes"] > (96 << 20)
    assert counters["lost_pages"] == 0 and counters["errors"] == 0, counters
    print("gossip-fed runs: puts per server", puts, counters)
    assert all(puts), puts
    # the first run's pages spread over the three servers by their hints: at the sample
    # where the servers held the most of them, none held under half of an even share
    # (the puts count the second run too, which the first server is kept out of)
    first = [[s.get(name, 0) for name in names] for s in samples(out, "first")]
    peak = max(first, key=sum, default=[0])
    assert sum(peak) > 10000 and min(peak) * 6 >= sum(peak), first

    # second run, the first server hinted full: it got no new page while the others had room
    seen = samples(out)
    assert len(seen) >= 3, out[-4000:]
    # (pages the first run left there, e.g. of nswapd itself, stay; none are added)
    assert max(s[names[0]] for s in seen) == seen[0][names[0]], seen
    growth = max(s[names[1]] + s[names[2]] for s in seen) - seen[0][names[1]] - seen[0][names[2]]
    assert growth > 1000, seen

    # every table lists the others: the client's has the three servers ALIVE; each
    # server's has the other two and the client
    client_table = json.loads(re.search(r"^table (.*)$", out, re.M).group(1))
    alive = {
        "%s:%d" % (m["address"], m["port"])
        for m in client_table["members"]
        if m["state"] == "alive"
    }
    assert alive == set(names), client_table
    for i, seen_alive in enumerate(listed):
        assert seen_alive == (set(names) - {names[i]}) | {"%s:%d" % (GUEST_IP, PORT)}, listed
    assert "UNLOADED clean" in out
