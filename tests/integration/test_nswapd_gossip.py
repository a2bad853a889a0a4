"""nswapd's gossip membership (``gossip = on``) between real daemons, over loopback only.

Several nswapd run on 127.0.0.2-5 (Linux routes all of 127/8 to lo, no root needed), each
announcing its own address, all on one free UDP port, with 100 ms rounds.  What each knows
is read from its table file (``gossip_table_file``, JSON, rewritten every round).  Hostile
datagrams are sent with Python's socket module and the codec in
plugins/module_utils/nswap_protocol.py.  Set NSWAPD_BIN to test another binary.  Every wait
is bounded.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import nswapd

ADDRS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
INTERVAL_MS = 100
CACHE = "1M"
PAGES = 256  # CACHE in pages
WAIT_S = 15.0  # bound of every wait for the cluster (150 rounds)
POLL_S = 0.02


# --- helpers -------------------------------------------------------------------


def free_udp_port(addrs):
    """A UDP port free on every address in ``addrs``."""
    for _attempt in range(50):
        socks = []
        try:
            first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(first)
            first.bind((addrs[0], 0))
            port = first.getsockname()[1]
            for addr in addrs[1:]:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((addr, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail("no UDP port free on all of %s" % addrs)


def free_tcp_port(addr):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def wait_for(check, what, timeout=WAIT_S, dump=None):
    """Poll ``check()`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("%s: not within %.0f s\n%s" % (what, timeout, dump() if dump else ""))
        time.sleep(POLL_S)


class Node:
    """One nswapd with gossip on, listening on ``addr`` (TCP port ephemeral unless given)."""

    def __init__(self, binary, addr, udp_port, table, seeds=(), node_id=None, tcp_port=0,
                 extra=()):  # fmt: skip
        self.addr = addr
        self.udp_port = udp_port
        self.table_path = table
        args = [
            "--cache-size", CACHE,
            "--gossip", "on",
            "--gossip-port", udp_port,
            "--gossip-interval", INTERVAL_MS,
            "--gossip-table-file", table,
            *extra,
        ]  # fmt: skip
        if seeds:
            args += ["--gossip-seeds", ",".join(seeds)]
        if node_id is not None:
            args += ["--node-id", hex(node_id)]
        self.srv = nswapd.Nswapd(binary, *args, listen="%s:%d" % (addr, tcp_port))
        self.port = self.srv.port
        try:
            # the first round writes the table at once
            table = wait_for(self.table, "%s writes its table" % addr, 10)
        except BaseException:
            self.srv.kill()
            raise
        self.id = int(table["self"]["id"], 16)

    def table(self):
        """The table file as a dict; None before the first round."""
        try:
            with open(self.table_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def members(self):
        table = self.table()
        return {int(m["id"], 16): m for m in table["members"]} if table else {}

    def sees(self, other, state="alive"):
        m = self.members().get(other.id)
        return m if m and m["state"] == state else None


@pytest.fixture
def cluster(nswapd_bin, tmp_path):
    """start(index, seeds=(), node_id=None, tcp_port=0, extra=()) -> Node on ADDRS[index];
    seeds are indices.  Nodes still running at the end are stopped and must exit 0."""
    udp_port = free_udp_port(ADDRS)
    nodes = []
    restarts = {}

    def start(index, seeds=(), node_id=None, tcp_port=0, extra=()):
        n = restarts[index] = restarts.get(index, -1) + 1
        node = Node(
            nswapd_bin,
            ADDRS[index],
            udp_port,
            tmp_path / ("table%d.%d.json" % (index, n)),
            seeds=[ADDRS[i] for i in seeds],
            node_id=node_id,
            tcp_port=tcp_port,
            extra=extra,
        )
        nodes.append(node)
        return node

    start.udp_port = udp_port
    start.nodes = nodes
    yield start
    failures = []
    for node in nodes:
        if node.srv.alive():
            rc = node.srv.stop()
            if rc != 0:
                failures.append("%s exited %s\n%s" % (node.addr, rc, node.srv.log_text()))
    assert not failures, "\n".join(failures)


def dump(nodes):
    def text():
        out = []
        for node in nodes:
            table = node.table()
            out.append("--- %s (0x%016x) table:" % (node.addr, node.id))
            out.append(json.dumps(table and table["members"], indent=1))
            out.append("--- log:\n" + "\n".join(node.srv.log_text().splitlines()[-15:]))
        return "\n".join(out)

    return text


def converged(nodes):
    """Every node sees every other one alive, at its announced address and TCP port."""
    for node in nodes:
        members = node.members()
        for other in nodes:
            if other is node:
                continue
            m = members.get(other.id)
            if not m or m["state"] != "alive":
                return False
            if (m["address"], m["port"]) != (other.addr, other.port):
                return False
    return True


def four(cluster):
    """Four nodes, each seeded with only the one before it (the first with none)."""
    nodes = [cluster(0)]
    for i in range(1, 4):
        nodes.append(cluster(i, seeds=[i - 1], node_id=0x1000 + i))
    wait_for(lambda: converged(nodes), "4 nodes find each other", dump=dump(nodes))
    return nodes


def udp_inodes():
    """Socket inodes of every IPv4/IPv6 UDP socket, with their local address field."""
    inodes = {}
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        with open(name, encoding="ascii") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                inodes[fields[9]] = fields[1]
    return inodes


def socket_inodes(pid):
    out = []
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            out.append(m.group(1))
    return out


def proc_net_addr(addr, port):
    """The local_address field of /proc/net/udp for addr:port (x86/arm64 little-endian)."""
    return "%08X:%04X" % (int.from_bytes(socket.inet_aton(addr), "little"), port)


# --- membership ------------------------------------------------------------------


def test_four_nodes_seeded_with_one_each_find_all(cluster):
    a, b, c, d = nodes = four(cluster)

    def complete(node):
        # One snapshot; waited for, as a node slowed down by a busy host may be
        # suspected for a round (and refute it) after the cluster first converged.
        table = node.table()
        return (
            table["self"]["state"] == "alive"
            and (table["self"]["address"], table["self"]["port"]) == (node.addr, node.port)
            and table["members_total"] == table["alive"] == len(table["members"]) == 3
            and all(
                (m["capacity"], m["free"], m["load"]) == (PAGES, PAGES, 0)
                and m["incarnation"] > 1_600_000_000  # the wall clock at start
                and 0 <= m["heard_ms_ago"] < 5000
                for m in table["members"]
            )
        )

    wait_for(lambda: all(complete(n) for n in nodes), "complete tables", dump=dump(nodes))
    for node in nodes:
        stats = node.table()["stats"]
        assert stats["rejected"] == stats["send_errors"] == stats["outside_subnet"] == 0
        assert stats["recv_datagrams"] > 0 and stats["joins"] >= 3
    assert len({n.id for n in nodes}) == 4
    assert b.id == 0x1001 and "derived from" in a.srv.log_text()  # a's id is auto

    # What a node lends follows its cache limit, used pages and connections.
    with a.srv.client(0x51) as conn:  # a client; the limit from a control connection
        with a.srv.client() as ctl:
            assert ctl.set_cache_limit(200)[0] == proto.OK
        conn.put(1, 1, bytes(proto.PAGE_SIZE))
        wait_for(
            lambda: all(
                (m := n.sees(a)) and (m["capacity"], m["free"], m["load"]) == (200, 199, 1)
                for n in (b, c, d)
            ),
            "the others see a's new capacity, free pages and load",
            dump=dump(nodes),
        )

    # SIGHUP logs the table too.
    d.srv.signal(signal.SIGHUP)
    assert d.srv.wait_log(r"gossip: self 0x0*1003 127\.0\.0\.5:%d alive .* 3 members" % d.port)
    assert d.srv.wait_log(r"gossip: member 0x0*1001 127\.0\.0\.3:%d alive incarnation" % b.port)


def test_killed_node_becomes_suspect_then_dead_and_comes_back_with_a_higher_incarnation(cluster):
    nodes = four(cluster)
    victim, others = nodes[3], nodes[:3]
    old = others[0].sees(victim)
    victim.srv.kill()  # SIGKILL: no goodbye
    seen = {o.addr: [] for o in others}

    def all_dead():
        for o in others:
            m = o.members().get(victim.id)
            state = m["state"] if m else "removed"
            if not seen[o.addr] or seen[o.addr][-1] != state:
                seen[o.addr].append(state)
        return all("dead" in states for states in seen.values())

    wait_for(all_dead, "the killed node is declared dead everywhere", dump=dump(nodes))
    for addr, states in seen.items():
        assert states[0] in ("alive", "suspect"), (addr, states)
        assert "left" not in states, (addr, states)
        assert "removed" not in states[: states.index("dead")], (addr, states)
    # Each of them pushes to it every round (fanout 3): each saw its probe unanswered.
    assert all("suspect" in states for states in seen.values()), seen
    assert any(o.table()["stats"]["suspected"] >= 1 for o in others)

    # A restart with the same id: the wall clock has moved on, so a higher incarnation.
    wait_for(lambda: int(time.time()) > old["incarnation"], "a new second", 5)
    back = cluster(3, seeds=[0], node_id=victim.id)
    assert back.id == victim.id
    wait_for(
        lambda: all(
            (m := o.sees(back)) and m["incarnation"] > old["incarnation"] and m["port"] == back.port
            for o in others
        ),
        "the restarted node is alive again with a higher incarnation",
        dump=dump(nodes + [back]),
    )
    wait_for(lambda: converged(others + [back]), "the restarted node sees everyone")


def test_stopped_node_is_seen_leaving_at_once(cluster):
    nodes = four(cluster)
    leaver, others = nodes[3], nodes[:3]
    started = time.monotonic()
    assert leaver.srv.stop() == 0
    assert leaver.srv.wait_log(r"gossip: leaving: told [1-3] members")
    seen = {o.addr: set() for o in others}

    def all_left():
        for o in others:
            m = o.members().get(leaver.id)
            seen[o.addr].add(m["state"] if m else "removed")
        return all(o.sees(leaver, "left") for o in others)

    wait_for(all_left, "the others see the stopped node as left", dump=dump(nodes))
    # Told, not found out: "left" (a crash ends "dead"), and in a few rounds.
    assert time.monotonic() - started < 2.0
    assert not any({"dead", "removed"} & states for states in seen.values()), seen
    assert leaver.table()["self"]["state"] == "left"


def test_node_id_auto_is_stable_across_restarts_and_differs_per_address(cluster):
    port = free_tcp_port(ADDRS[0])
    first = cluster(0, tcp_port=port)
    assert first.srv.stop() == 0
    again = cluster(0, tcp_port=port)
    other = cluster(1, tcp_port=free_tcp_port(ADDRS[1]))
    assert again.id == first.id
    assert other.id != first.id
    assert again.table()["self"]["incarnation"] >= first.table()["self"]["incarnation"]


# --- hostile datagrams -------------------------------------------------------------


def entry(node_id=0x77, addr="127.0.0.9", port=7405, **fields):
    fields.setdefault("capacity_pages", 10)
    fields.setdefault("free_pages", 5)
    fields.setdefault("heartbeat", 1)
    fields.setdefault("incarnation", 1)
    return proto.encode_gossip_entry(node_id, addr, port, **fields)


def valid(sender=0x77, entries=None, **fields):
    return proto.encode_gossip(sender, entries or [entry(sender)], tag=1, **fields)


def flip(data, offset):
    data = bytearray(data)
    data[offset] ^= 0x01
    return bytes(data)


def test_hostile_datagrams_are_rejected_counted_and_logged(cluster):
    node = cluster(0, node_id=0x4242)
    good = valid()
    hostile = {
        "datagram shorter than a header": b"NSWP\x01\x08",
        "bad magic": valid(magic=0x11223344),
        "header checksum mismatch": flip(good, 52),
        "unsupported protocol version": valid(version=2),
        "not a GOSSIP frame": proto.encode_frame(proto.HELLO, entry(), client_id=0x77),
        "nonzero field that GOSSIP does not use": valid(slot=1),
        "length does not match the datagram": good + b"\0",
        "payload checksum mismatch": valid(crc=proto.crc32c(entry()) ^ 1),
        "payload is not 1 to 24 whole entries": proto.encode_frame(
            proto.GOSSIP, entry()[:47], client_id=0x77
        ),
        # 25 entries: also longer than any datagram nswapd sends
        "payload is not 1 to 24 whole entries (25)": valid(
            entries=[entry()] + [entry(0x100 + i) for i in range(24)]
        ),
        "entry with more free pages than capacity": valid(
            entries=[entry(), entry(0x78, capacity_pages=3, free_pages=4)]
        ),
        "entry with nonzero reserved bytes": valid(entries=[entry(reserved=1)]),
        "entry with nonzero reserved bytes (flags)": valid(entries=[entry(flags=1)]),
        "entry with an unknown state": valid(entries=[entry(state=4)]),
        "entry with node id 0": valid(entries=[entry(), entry(0)]),
        "entry without an address or port": valid(entries=[entry(), entry(0x79, port=0)]),
        "first entry is not the sender's": valid(entries=[entry(0x78)]),
        "sender uses this node's id": valid(sender=0x4242, entries=[entry(0x4242)]),
    }
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        for data in hostile.values():
            s.sendto(data, (node.addr, node.udp_port))
        wait_for(
            lambda: node.table()["stats"]["rejected"] == len(hostile),
            "%d datagrams rejected" % len(hostile),
            dump=dump([node]),
        )
        src = "127.0.0.1:%d" % s.getsockname()[1]
        for reason in hostile:
            why = re.escape(reason.split(" (")[0])
            assert node.srv.wait_log(r"%s: gossip: %s; datagram dropped" % (src, why), 1), reason
        table = node.table()
        assert table["members"] == [] and table["stats"]["recv_datagrams"] == 0
        assert table["self"]["state"] == "alive" and table["self"]["incarnation"] > 1
        assert node.srv.alive() and node.srv.status()["capacity_pages"] == PAGES
        # Nothing of a rejected datagram is applied: 0x78 above came with a bad entry.
        assert 0x78 not in node.members()

        # The control: a well-formed push is merged, and answered to its source port.
        s.settimeout(5)
        s.sendto(valid(), (node.addr, node.udp_port))
        reply, source = s.recvfrom(4096)
        assert source == (node.addr, node.udp_port)
        frame, used = proto.decode_frame(reply)
        assert used == len(reply) and frame.type == proto.GOSSIP | proto.REPLY
        assert frame.client_id == node.id
        first = proto.decode_gossip_entries(frame.payload)[0]
        assert (first.node_id, first.addr, first.port) == (node.id, node.addr, node.port)
        assert (first.capacity_pages, first.free_pages) == (PAGES, PAGES)
        wait_for(lambda: 0x77 in node.members(), "the valid sender in the table")
        assert node.table()["stats"]["rejected"] == len(hostile)


def test_datagrams_from_outside_gossip_subnet_are_dropped(cluster):
    node = cluster(0, extra=["--gossip-subnet", "127.0.0.0/29"])  # .0 to .7
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.bind(("127.0.0.9", 0))
        out.sendto(valid(0x91, [entry(0x91)]), (node.addr, node.udp_port))
        wait_for(lambda: node.table()["stats"]["outside_subnet"] == 1, "counted as outside")
    assert node.srv.wait_log(r"127\.0\.0\.9:\d+: gossip: source outside gossip_subnet")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inside:
        inside.bind(("127.0.0.6", 0))
        inside.sendto(valid(0x92, [entry(0x92)]), (node.addr, node.udp_port))
        wait_for(lambda: 0x92 in node.members(), "a sender inside the subnet is merged")
    assert 0x91 not in node.members() and node.table()["stats"]["rejected"] == 0


# --- configuration and sockets ------------------------------------------------------


def run_nswapd(binary, *args):
    return subprocess.run(
        [str(binary), *map(str, args)], capture_output=True, text=True, timeout=10, check=False
    )


GOSSIP_ON = ["--gossip", "on", "--listen", "127.0.0.2:0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (GOSSIP_ON + ["--gossip-port", "0"], "--gossip-port: '0' is out of range: gossip port"),
        (GOSSIP_ON + ["--gossip-port", "70000"], "--gossip-port: '70000' is not a UDP port"),
        (
            GOSSIP_ON + ["--gossip-seeds", "10.0.0.1,node2"],
            "--gossip-seeds: 'node2' is not an IPv4",
        ),
        (GOSSIP_ON + ["--gossip-seeds", "::1"], "--gossip-seeds: '::1' is not an IPv4 address"),
        (GOSSIP_ON + ["--gossip-seeds", ",".join(["10.0.0.1"] * 17)], "lists more than 16 seeds"),
        (["--gossip", "on", "--listen", "0.0.0.0:0"], "gossip_address: not set, and listen ="),
        (["--gossip", "on", "--listen", "7405"], "set gossip_address (--gossip-address)"),
        (GOSSIP_ON + ["--node-id", "0"], "--node-id: '0' is not a node id"),
        (GOSSIP_ON + ["--node-id", "0x0"], "--node-id: '0x0' is not a node id"),
        (GOSSIP_ON + ["--gossip-interval", "5"], "--gossip-interval: '5' is out of range"),
        (GOSSIP_ON + ["--gossip-fanout", "17"], "--gossip-fanout: '17' is out of range"),
        (GOSSIP_ON + ["--gossip-subnet", "10.0.0.1/24"], "--gossip-subnet: '10.0.0.1/24' has host"),
        (GOSSIP_ON + ["--gossip-address", "host"], "--gossip-address: 'host' is not an IPv4"),
        (GOSSIP_ON + ["--gossip-table-file", "t.json"], "'t.json' is not an absolute path"),
        (["--gossip", "maybe"], "--gossip: 'maybe' is not a boolean; use on or off"),
        (GOSSIP_ON + ["--client-device", "../x"], "--client-device: '../x' is not a device name"),
        (GOSSIP_ON + ["--client-device", ".."], "--client-device: '..' is not a device name"),
        (GOSSIP_ON + ["--client-device", "n" * 32], "is not a device name; use the configfs"),
        (GOSSIP_ON + ["--client-servers", "0"], "--client-servers: '0' is not a server count"),
        (GOSSIP_ON + ["--client-servers", "65"], "use an integer 1-64"),
        (["--client-device", "nswap0"], "client_device = nswap0: needs gossip = on"),
        (["--cache-size", "0"], "cache_size = 0 lends nothing: it is for a node that only"),
        (GOSSIP_ON + ["--cache-size", "0", "--elastic", "on"], "elastic = on with cache_size = 0"),
        (GOSSIP_ON + ["--cache-size", "100"], "'100' is too small; use 0 (lend nothing) or"),
        (["--overflow", "16M"], "overflow needs gossip = on: the pages a full cache takes"),
        (GOSSIP_ON + ["--overflow", "lots"], "--overflow: 'lots' is not a size; use bytes"),
        (GOSSIP_ON + ["--overflow", "9T"], "--overflow: '9T' is too large; the maximum is 8T"),
        (GOSSIP_ON + ["--cache-size", "0", "--overflow", "1M"], "overflow with cache_size = 0"),
        (GOSSIP_ON + ["--cache-size", "5T", "--overflow", "4T"], "cache_size + overflow is above"),
    ],
)
def test_config_errors_exit_2(nswapd_bin, args, message):
    r = run_nswapd(nswapd_bin, *args, "--foreground")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and r.stderr.startswith("nswapd: "), r.stderr
    assert r.stdout == ""


def test_config_file_errors_name_the_line(nswapd_bin, tmp_path):
    conf = tmp_path / "nswapd.conf"
    conf.write_text("gossip = on\nlisten = 127.0.0.2:7405\ngossip_port = 0\n")
    r = run_nswapd(nswapd_bin, "-c", conf, "--check-config")
    assert r.returncode == 2
    assert r.stderr.startswith("nswapd: %s:3: gossip_port: '0' is out of range" % conf)
    conf.write_text("gossip = on\nlisten = 0.0.0.0:7405\n")
    r = run_nswapd(nswapd_bin, "-c", conf, "--check-config")
    assert r.returncode == 2 and "gossip_address" in r.stderr


def test_check_config_prints_gossip_keys_only_when_on(nswapd_bin, tmp_path):
    conf = tmp_path / "nswapd.conf"
    conf.write_text(
        "listen = 10.1.2.3:7405\n"
        "gossip = on\n"
        "gossip_seeds = 10.1.2.4 , 10.1.2.5\n"
        "gossip_subnet = 10.1.0.0/16\n"
        "node_id = 0xABC\n"
        "gossip_table_file = /run/nswap/gossip.json\n"
    )
    r = run_nswapd(nswapd_bin, "-c", conf, "--gossip-interval", "250", "--check-config")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[10:] == [
        "gossip = on",
        "gossip_port = 7405",
        "gossip_interval = 250",
        "gossip_fanout = 3",
        "gossip_address = 10.1.2.3",  # from listen
        "node_id = 0x0000000000000abc",
        "gossip_seeds = 10.1.2.4,10.1.2.5",
        "gossip_subnet = 10.1.0.0/16",
        "gossip_table_file = /run/nswap/gossip.json",
    ]
    again = tmp_path / "again.conf"
    again.write_text(r.stdout)
    assert run_nswapd(nswapd_bin, "-c", again, "--check-config").stdout == r.stdout
    # off (the default): the keys are still checked, but not printed
    r = run_nswapd(nswapd_bin, "--gossip-port", "9999", "--check-config")
    assert r.returncode == 0 and "gossip" not in r.stdout and len(r.stdout.splitlines()) == 10


def test_overflow_is_printed_only_when_set(nswapd_bin):
    r = run_nswapd(nswapd_bin, *GOSSIP_ON, "--overflow", "16M", "--check-config")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "overflow = 16M"
    r = run_nswapd(nswapd_bin, *GOSSIP_ON, "--overflow", "0", "--check-config")
    assert r.returncode == 0 and "overflow" not in r.stdout


def test_client_device_is_printed_and_a_missing_one_is_warned_of_once(nswapd_bin, cluster):
    r = run_nswapd(nswapd_bin, *GOSSIP_ON, "--client-device", "nswap7", "--check-config")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-2:] == ["client_device = nswap7", "client_servers = 16"]
    # no such device (the host has no nswap.ko): a warning once, gossip goes on
    first = cluster(0)
    node = cluster(1, seeds=[0], extra=["--client-device", "nswap-absent"])
    wait_for(lambda: converged([first, node]), "2 nodes find each other", dump=dump([first, node]))
    rounds = node.table()["stats"]["rounds"]
    wait_for(lambda: node.table()["stats"]["rounds"] >= rounds + 5, "5 more rounds")
    log = node.srv.log_text()
    warning = (
        "client_device nswap-absent: cannot read "
        "/sys/kernel/config/nswap/nswap-absent/servers: No such file or directory"
    )
    assert log.count(warning) == 1, log
    assert node.srv.alive()


def test_gossip_off_binds_no_udp_socket(start_server, cluster):
    srv = start_server("--cache-size", CACHE)
    assert socket_inodes(srv.pid), "nswapd has sockets (its listener at least)"
    assert not set(socket_inodes(srv.pid)) & set(udp_inodes())
    assert "gossip" not in srv.log_text()

    # With gossip on: exactly one, on the announced address and the gossip port.
    node = cluster(0)
    udp = udp_inodes()
    mine = [udp[i] for i in socket_inodes(node.srv.pid) if i in udp]
    assert mine == [proc_net_addr(node.addr, node.udp_port)]


def test_second_node_on_the_same_gossip_address_and_port_exits_1(nswapd_bin, cluster):
    node = cluster(0)
    r = run_nswapd(
        nswapd_bin,
        "--foreground",
        "--listen", "%s:0" % node.addr,
        "--gossip", "on",
        "--gossip-port", node.udp_port,
        "--cache-size", CACHE,
    )  # fmt: skip
    assert r.returncode == 1
    assert "gossip: cannot bind UDP %s:%d: Address already in use" % (node.addr, node.udp_port) in (
        r.stderr
    )


def test_a_node_that_lends_nothing_hears_the_gossip_and_is_never_a_server(cluster):
    """cache_size 0 (a node that only borrows): it and a lender see each other alive; it
    announces no room (capacity and free 0: placement and the page mover pass over a
    member with nothing free) and refuses every page."""
    lender = cluster(0)
    borrower = cluster(1, seeds=[0], extra=["--cache-size", "0"])
    third = cluster(2, seeds=[0])
    nodes = [lender, borrower, third]
    wait_for(lambda: converged(nodes), "3 nodes find each other", dump=dump(nodes))
    seen = lender.sees(borrower)
    assert (seen["capacity"], seen["free"]) == (0, 0)
    assert borrower.sees(lender)["capacity"] > 0
    st = borrower.srv.status()
    assert (st["capacity_pages"], st["limit_pages"], st["used_pages"]) == (0, 0, 0)
    with borrower.srv.client() as c:
        c.hello(0x5151, "borrower-test")
        assert c.put(1, 1, bytes(proto.PAGE_SIZE)) == proto.ENOSPC
        assert c.get(1, 1)[0] == proto.ENOENT
    assert borrower.srv.status()["used_pages"] == 0
    assert "lends nothing" in borrower.srv.log_text()
