"""nswap.cluster.nswap_info run in-process against a fake /sys and /proc tree.

The module reads everything under nswap_info.ROOT; the tests point it at a
tree under tmp_path laid out as docs/kmod.md describes, and at a real nswapd
on loopback (or at a closed port) for the server part.
"""

import json
import time

import pytest
from ansible.module_utils import basic
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_ko
from ansible_collections.nswap.cluster.plugins.modules import nswap_info as info_module

from harness.nswapd import Nswapd as Server
from tests.unit.module_harness import run_module
from tests.unit.plugins.modules.test_nswap_server import free_port

PROC_SWAPS = (
    "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    "/dev/vda3                               partition\t1048572\t\t0\t\t-2\n"
    "/dev/nswap0                             partition\t1048572\t\t2048\t\t100\n"
)
LATENCY = "".join("%d %d\n" % (1 << i if i else 0, i * 10) for i in range(24))


def write_tree(root, files):
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A node with nswap.ko loaded, one powered device used as swap, one powered off."""
    cfg = "sys/kernel/config/nswap/"
    write_tree(
        tmp_path,
        {
            "sys/module/nswap/version": "0.1.0\n",
            "sys/module/nswap/srcversion": "8C1E2A4F0D\n",
            "sys/module/nswap/parameters/timeout_ms": "10000\n",
            "sys/module/nswap/parameters/connections_per_server": "2\n",
            cfg + "nswap0/size": "1073741824\n",
            cfg + "nswap0/servers": (
                "10.77.0.12:7405 up pages=12 hint=100/65536\n[fd00::2]:7405 connecting pages=0\n"
            ),
            cfg + "nswap0/connections_per_server": "2\n",
            cfg + "nswap0/timeout_ms": "10000\n",
            cfg + "nswap0/retries": "3\n",
            cfg + "nswap0/client_id": "0x0000000100000000\n",
            cfg + "nswap0/power": "1\n",
            cfg + "nswap0/index": "0\n",
            cfg + "spare/size": "0\n",
            cfg + "spare/servers": "",
            cfg + "spare/power": "0\n",
            cfg + "spare/index": "1\n",
            cfg + "spare/client_id": "0x00000000deadbeef\n",
            "sys/block/nswap0/nswap/puts": "512\n",
            "sys/block/nswap0/nswap/errors": "0\n",
            "sys/block/nswap0/nswap/inflight": "3\n",
            "sys/block/nswap0/nswap/latency_hist": LATENCY,
            "proc/swaps": PROC_SWAPS,
        },
    )
    monkeypatch.setattr(info_module, "ROOT", str(tmp_path))
    return tmp_path


def run(monkeypatch, check_mode=False, **args):
    args.setdefault("server_port", free_port())  # nothing listens there
    args.setdefault("timeout", 1)
    return run_module(monkeypatch, info_module, args, check_mode=check_mode)


@pytest.mark.parametrize("check_mode", [False, True])
def test_facts_of_a_node_with_a_device_in_use(monkeypatch, node, check_mode):
    failed, result = run(monkeypatch, check_mode=check_mode)
    assert not failed, result
    assert result["changed"] is False
    facts = result["nswap"]
    assert facts["module"] == dict(
        loaded=True,
        version="0.1.0",
        srcversion="8C1E2A4F0D",
        parameters=dict(connections_per_server=2, timeout_ms=10000),
        error=None,
    )
    nswap0, spare = facts["devices"]
    assert nswap0["name"] == "nswap0" and nswap0["path"] == "/dev/nswap0"
    assert (nswap0["size"], nswap0["power"], nswap0["index"]) == (1 << 30, 1, 0)
    assert (nswap0["retries"], nswap0["timeout_ms"], nswap0["connections_per_server"]) == (
        3,
        10000,
        2,
    )
    assert nswap0["client_id"] == "0x0000000100000000"
    assert nswap0["servers"] == [
        dict(
            name="10.77.0.12:7405",
            address="10.77.0.12",
            port=7405,
            state="up",
            pages=12,
            hint=dict(free=100, capacity=65536),
        ),
        dict(
            name="[fd00::2]:7405",
            address="fd00::2",
            port=7405,
            state="connecting",
            pages=0,
            hint=None,
        ),
    ]
    counters = nswap0["counters"]
    assert (counters["puts"], counters["errors"], counters["inflight"]) == (512, 0, 3)
    assert len(counters["latency_hist"]) == 24
    assert counters["latency_hist"][:2] == [[0, 0], [2, 10]]
    assert nswap0["swap"] == dict(
        name="/dev/nswap0", type="partition", size=1048572 * 1024, used=2048 * 1024,
        priority=100, nswap=True,
    )  # fmt: skip
    assert spare["path"] is None and spare["counters"] == {} and spare["swap"] is None
    assert spare["servers"] == [] and spare["power"] == 0
    assert [(s["name"], s["nswap"]) for s in facts["swaps"]] == [
        ("/dev/vda3", False),
        ("/dev/nswap0", True),
    ]
    server = facts["server"]
    assert server["running"] is False
    assert server["error"].startswith("no nswapd answers on 127.0.0.1:")


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_node_without_nswap(monkeypatch, tmp_path, check_mode):
    monkeypatch.setattr(info_module, "ROOT", str(tmp_path))
    failed, result = run(monkeypatch, server=False, check_mode=check_mode)
    assert not failed, result
    error = (
        "nswap.ko is not loaded (no %s/sys/module/nswap); load it: modprobe nswap, or deploy "
        "it with the nswap.cluster.nswap_kmod role" % tmp_path
    )
    assert result["nswap"] == dict(
        module=dict(loaded=False, version=None, srcversion=None, parameters={}, error=error),
        devices=[],
        swaps=[],
        server=dict(running=None, address=result["nswap"]["server"]["address"], error=None,
                    status={}),
        gossip=None,  # no /run/nswap/gossip.json
    )  # fmt: skip


def test_loaded_without_configfs_says_so(monkeypatch, tmp_path):
    write_tree(tmp_path, {"sys/module/nswap/version": "0.1.0\n", "proc/swaps": PROC_SWAPS})
    monkeypatch.setattr(info_module, "ROOT", str(tmp_path))
    failed, result = run(monkeypatch, server=False)
    assert not failed, result
    module = result["nswap"]["module"]
    assert module["loaded"] is True and module["version"] == "0.1.0"
    assert "configfs is not mounted at %s/sys/kernel/config" % tmp_path in module["error"]
    assert result["nswap"]["devices"] == [] and len(result["nswap"]["swaps"]) == 2


def test_local_server_status(monkeypatch, node, nswapd_bin):
    srv = Server(nswapd_bin, "--cache-size", "64K")
    try:
        failed, result = run(monkeypatch, server_port=srv.port)
    finally:
        assert srv.stop() == 0
    assert not failed, result
    server = result["nswap"]["server"]
    assert server["running"] is True and server["error"] is None
    assert server["address"] == "127.0.0.1:%d" % srv.port
    assert (server["status"]["capacity_pages"], server["status"]["limit_pages"]) == (16, 16)


def test_bad_arguments(monkeypatch, node):
    failed, result = run(monkeypatch, timeout=-1)
    assert failed and "timeout=-1.0 must be more than 0" in result["msg"]


def test_parsers_tolerate_odd_lines():
    text = "\n10.0.0.1:7405\n[fd00::2]:7405 up\nbogus idle pages=x hint=1/\n"
    assert nswap_ko.parse_servers(text) == [
        dict(
            name="10.0.0.1:7405", address="10.0.0.1", port=7405, state=None, pages=None, hint=None
        ),
        dict(
            name="[fd00::2]:7405", address="fd00::2", port=7405, state="up", pages=None, hint=None
        ),
        dict(name="bogus", address=None, port=None, state="idle", pages=None, hint=None),
    ]
    assert nswap_ko.parse_latency_hist("0 1\nbogus\n2 x\n4 5\n") == [[0, 1], [4, 5]]


def test_an_item_with_unreadable_attributes(tmp_path):
    (tmp_path / nswap_ko.CONFIGFS / "gone").mkdir(parents=True)
    reader = nswap_ko.NswapKo(str(tmp_path))
    assert reader.item("missing") is None
    device = reader.item("gone")  # an item whose attributes cannot be read
    assert device["size"] is None and device["servers"] == [] and device["client_id"] is None
    assert reader.counters(None) == {} and reader.devices()[0]["path"] is None


TABLE = "run/nswap/gossip.json"


@pytest.fixture
def warnings(monkeypatch):
    """The module's warnings (AnsibleModule.warn), in order."""
    said = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text, **kw: said.append(text))
    return said


def member(last_octet, state="alive", **more):
    entry = dict(
        id="0x%016x" % (0x5E2A0C41D9B3F100 + last_octet),
        address="10.77.0.%d" % last_octet,
        port=7405,
        state=state,
        incarnation=1767000000,
        heartbeat=120,
        capacity=65536,
        free=60000,
        load=2,
    )
    entry.update(more)
    return entry


def table(written_unix_ms=None, interval_ms=1000):
    """A table file's contents as nswapd writes it (gossip_net.c, write_table)."""
    members = [member(12, heard_ms_ago=800), member(13, "suspect", heard_ms_ago=4200)]
    return dict(
        version=1,
        pid=4242,
        name="node11",
        written_unix_ms=int(time.time() * 1000) if written_unix_ms is None else written_unix_ms,
        gossip_port=7405,
        interval_ms=interval_ms,
        self=member(11),
        members_total=2,
        members_listed=2,
        alive=1,
        suspect=1,
        dead=0,
        left=0,
        members=members,
        stats=dict(rounds=120, sent_datagrams=360, rejected=0, outside_subnet=0, joins=1),
    )


@pytest.mark.parametrize("check_mode", [False, True])
def test_gossip_table_with_members(monkeypatch, node, warnings, check_mode):
    written = table()
    write_tree(node, {TABLE: json.dumps(written, indent=1)})
    failed, result = run(monkeypatch, server=False, check_mode=check_mode)
    assert not failed, result
    gossip = result["nswap"]["gossip"]
    assert gossip["path"] == "/run/nswap/gossip.json" and gossip["error"] is None
    assert gossip["stale"] is False and 0 <= gossip["age_ms"] < 60000
    assert gossip["self"] == written["self"] and gossip["stats"] == written["stats"]
    assert [(m["address"], m["state"]) for m in gossip["members"]] == [
        ("10.77.0.12", "alive"),
        ("10.77.0.13", "suspect"),
    ]
    assert gossip["members"][1]["heard_ms_ago"] == 4200
    assert (gossip["alive"], gossip["suspect"], gossip["members_total"]) == (1, 1, 2)
    assert (gossip["interval_ms"], gossip["name"], gossip["version"]) == (1000, "node11", 1)
    assert warnings == []


@pytest.mark.parametrize("table_file", ["/run/nswap/gossip.json", ""])
def test_gossip_table_missing_or_skipped(monkeypatch, node, table_file):
    if not table_file:  # an empty option skips even a file that is there
        write_tree(node, {TABLE: json.dumps(table())})
    failed, result = run(monkeypatch, server=False, gossip_table_file=table_file)
    assert not failed, result
    assert result["nswap"]["gossip"] is None
    assert result["nswap"]["module"]["loaded"] is True  # the rest as before


@pytest.mark.parametrize(
    "text, error",
    [
        ('{"version": 1, "members": [', "/run/nswap/gossip.json is not JSON ("),
        ("[]", "is not an nswapd gossip table: not a JSON object"),
        ('{"version": 2}', "is not an nswapd gossip table: version 2, not 1"),
        (
            json.dumps(dict(table(), members="none")),
            "is not an nswapd gossip table: members is missing or not a list",
        ),
        (
            json.dumps(dict(table(), written_unix_ms="soon")),
            "written_unix_ms is missing or not a number",
        ),
        (json.dumps(dict(table(), members=[1, 2])), "members is not a list of objects"),
        (b"\xff\xfe", "cannot read /run/nswap/gossip.json"),
    ],
)
def test_gossip_table_malformed_warns(monkeypatch, node, warnings, text, error):
    target = node / TABLE
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text)
    failed, result = run(monkeypatch, server=False)
    assert not failed, result
    gossip = result["nswap"]["gossip"]
    assert error in gossip["error"], gossip
    assert gossip["members"] == [] and gossip["self"] is None and gossip["stale"] is None
    assert len(warnings) == 1 and warnings[0].startswith("gossip table: "), warnings
    assert error in warnings[0] and "nswap.gossip has no members" in warnings[0]


@pytest.mark.parametrize(
    "age_ms, interval_ms, stale",
    [
        (11000, 1000, True),  # 11 rounds
        (9000, 1000, False),  # 9 rounds
        (900, 50, False),  # 18 rounds but under 1 s
        (1500, 50, True),
    ],
)
def test_gossip_table_stale(monkeypatch, node, warnings, age_ms, interval_ms, stale):
    written = int(time.time() * 1000) - age_ms
    write_tree(node, {TABLE: json.dumps(table(written, interval_ms))})
    failed, result = run(monkeypatch, server=False)
    assert not failed, result
    gossip = result["nswap"]["gossip"]
    assert gossip["stale"] is stale and gossip["error"] is None
    assert age_ms <= gossip["age_ms"] < age_ms + 30000
    assert len(gossip["members"]) == 2  # still returned
    assert len(warnings) == (1 if stale else 0), warnings
    if stale:
        assert "gossip.json was written %d ms ago" % gossip["age_ms"] in warnings[0]


def test_gossip_table_of_a_real_nswapd(monkeypatch, node, nswapd_bin):
    """The file a running nswapd writes (gossip on, no seeds) is read as it is."""
    path = node / TABLE
    path.parent.mkdir(parents=True)
    srv = Server(nswapd_bin, "--cache-size", "64K", "--gossip", "on", "--gossip-port",
                 free_port(), "--gossip-interval", "50", "--gossip-table-file", path)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        failed, result = run(monkeypatch, server_port=srv.port)
    finally:
        assert srv.stop() == 0
    assert not failed, result
    gossip = result["nswap"]["gossip"]
    assert gossip["error"] is None and gossip["stale"] is False, gossip
    assert gossip["self"]["address"] == "127.0.0.1" and gossip["self"]["state"] == "alive"
    assert gossip["self"]["port"] == srv.port and gossip["members"] == []
    assert gossip["interval_ms"] == 50 and gossip["stats"]["rounds"] >= 1


def test_gossip_table_file_must_be_absolute(monkeypatch, node):
    failed, result = run(monkeypatch, gossip_table_file="gossip.json")
    assert failed and "gossip_table_file=gossip.json must be an absolute path" in result["msg"]
