"""nswap.cluster.nswap_device run in-process against a simulated nswap.ko.

FakeNswapKo keeps /sys/module/nswap, the configfs tree, the sysfs counters and
/proc/swaps as real files under tmp_path (the module's ROOT) and applies
nswap.ko's rules (docs/kmod.md) to every write the module makes: mkdir creates
the attributes, `add`/`del` edit the server list, power 1 creates
/sys/block/nswapN, powered-off-only attributes and power 0 of an open device
are refused with EBUSY, bad values with EINVAL.
"""

import errno
import os

import pytest
from ansible.module_utils import basic
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_device as util
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_ko
from ansible_collections.nswap.cluster.plugins.modules import nswap_device as module

from tests.unit.module_harness import run_module

GIB = 1 << 30
SERVERS = ["10.77.0.12:7405", "10.77.0.13:7405"]


class FakeNswapKo:
    def __init__(self, root):
        self.root = root
        self.configfs = root / nswap_ko.CONFIGFS
        self.block = root / nswap_ko.SYS_BLOCK
        self.proc_swaps = root / nswap_ko.PROC_SWAPS
        (root / nswap_ko.SYS_MODULE).mkdir(parents=True)
        self.configfs.mkdir(parents=True)
        self.block.mkdir()
        self.proc_swaps.parent.mkdir()
        self.swapped_on = set()  # devices in /proc/swaps
        self.writes = []
        self.refuse = {}  # (attr, value) -> errno
        self.probed = []
        self.dead_servers = set()
        self.update_swaps()

    # --- the kernel side ------------------------------------------------------

    def update_swaps(self):
        lines = ["Filename Type Size Used Priority"]
        lines += ["%s partition 1048572 0 100" % dev for dev in sorted(self.swapped_on)]
        self.proc_swaps.write_text("\n".join(lines) + "\n")

    def attr(self, item, name):
        return (item / name).read_text().strip()

    def set(self, item, name, value):
        (item / name).write_text("%s\n" % value)

    def make_item(self, path):
        item = self.configfs / os.path.basename(path)
        item.mkdir()
        used = {int(self.attr(other, "index")) for other in self.items() if other != item}
        name = item.name
        index = int(name[5:]) if name.startswith("nswap") and name[5:].isdigit() else -1
        if index in used or index < 0:
            index = min(set(range(1024)) - used)
        for name, value in (
            ("size", 0),
            ("servers", ""),
            ("connections_per_server", 2),
            ("timeout_ms", 10000),
            ("retries", 3),
            ("migration", 0),
            ("backing", ""),
            ("sweep_interval_s", 0),
            ("client_id", "0x0000000000001234"),
            ("power", 0),
            ("index", index),
        ):
            self.set(item, name, value)

    def items(self):
        return [p for p in self.configfs.iterdir() if p.is_dir()]

    def remove_item(self, path):
        item = self.configfs / os.path.basename(path)
        if self.attr(item, "power") == "1":
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        for child in item.iterdir():
            child.unlink()
        item.rmdir()

    def write_attr(self, path, text):
        item, name = self.configfs / os.path.basename(os.path.dirname(path)), os.path.basename(path)
        value = text.strip()
        self.writes.append((item.name, name, value))
        if (name, value) in self.refuse:
            code = self.refuse[(name, value)]
            raise OSError(code, os.strerror(code))
        powered = self.attr(item, "power") == "1"
        if name in ("size", "connections_per_server", "migration", "backing") and powered:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        if name == "servers":
            verb, server = value.split()
            servers = [line.split()[0] for line in self.attr(item, "servers").splitlines()]
            if verb == "del":
                if powered:
                    raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
                servers.remove(server)
            else:
                servers.append(server)
            state = "up" if powered else "idle"
            self.set(item, "servers", "\n".join("%s %s" % (s, state) for s in servers))
        elif name == "power":
            self.power(item, value == "1")
        elif name == "backing":
            self.set(item, name, value)
        else:
            self.set(item, name, int(util.device_size(value) if name == "size" else value))

    def power(self, item, on):
        index = self.attr(item, "index")
        disk = self.block / ("nswap%s" % index)
        if on:
            if self.attr(item, "size") == "0" or not self.attr(item, "servers"):
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            (disk / "nswap").mkdir(parents=True, exist_ok=True)
            for counter in ("puts", "gets", "errors"):
                (disk / "nswap" / counter).write_text("0\n")
            (disk / "nswap" / "latency_hist").write_text("0 0\n2 0\n")
        elif disk.exists():
            if "/dev/nswap%s" % index in self.swapped_on:
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            for child in (disk / "nswap").iterdir():
                child.unlink()
            (disk / "nswap").rmdir()
            disk.rmdir()
        servers = [line.split()[0] for line in self.attr(item, "servers").splitlines()]
        state = "up" if on else "idle"
        self.set(item, "servers", "\n".join("%s %s" % (s, state) for s in servers))
        self.set(item, "power", int(on))

    def probe_server(self, address, port, timeout):
        self.probed.append("%s:%d" % (address, port))
        if "%s:%d" % (address, port) in self.dead_servers:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    # --- helpers for tests ----------------------------------------------------

    def snapshot(self):
        """Every file of the fake tree and its content."""
        files = {}
        for root in (self.configfs, self.block):
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    files[str(path)] = path.read_text()
        return files

    def create(self, name="nswap0", size="1G", servers=tuple(SERVERS), powered=True):
        self.make_item(self.configfs / name)
        item = self.configfs / name
        self.write_attr(str(item / "size"), size)
        for server in servers:
            self.write_attr(str(item / "servers"), "add " + server)
        if powered:
            self.write_attr(str(item / "power"), "1")
        self.writes = []


@pytest.fixture
def ko(tmp_path, monkeypatch):
    fake = FakeNswapKo(tmp_path / "loaded")
    monkeypatch.setattr(module, "ROOT", str(fake.root))
    for name in ("write_attr", "make_item", "remove_item", "probe_server"):
        monkeypatch.setattr(module, name, getattr(fake, name))
    return fake


@pytest.fixture
def warnings(monkeypatch):
    """The module's warnings (module.warn), in order."""
    messages = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: messages.append(msg))
    return messages


@pytest.fixture
def bare(tmp_path, monkeypatch, ko):
    """A node nswap.ko was never loaded on: no /sys/module/nswap, no configfs item tree."""
    root = tmp_path / "bare"
    (root / "proc").mkdir(parents=True)
    monkeypatch.setattr(module, "ROOT", str(root))
    return root


def tree(root):
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def run(monkeypatch, check_mode=False, diff=False, **args):
    args.setdefault("name", "nswap0")
    if diff:
        args["_ansible_diff"] = True
    return run_module(monkeypatch, module, args, check_mode=check_mode)


def present(monkeypatch, **args):
    args.setdefault("size", "1G")
    args.setdefault("servers", SERVERS)
    return run(monkeypatch, **args)


# --- creating ---------------------------------------------------------------------


def test_creates_configures_and_powers_on(monkeypatch, ko):
    failed, result = present(monkeypatch, timeout_ms=5000, retries=5, connections_per_server=4)
    assert not failed, result["msg"] if failed else None
    assert result["changed"] and result["device"] == "/dev/nswap0"
    assert ko.writes == [
        ("nswap0", "size", str(GIB)),
        ("nswap0", "connections_per_server", "4"),
        ("nswap0", "timeout_ms", "5000"),
        ("nswap0", "retries", "5"),
        ("nswap0", "servers", "add 10.77.0.12:7405"),
        ("nswap0", "servers", "add 10.77.0.13:7405"),
        ("nswap0", "power", "1"),
    ]
    assert result["config"] == dict(
        size=GIB,
        servers=SERVERS,
        connections_per_server=4,
        timeout_ms=5000,
        retries=5,
        migration=0,
        backing="",
        sweep_interval_s=0,
        powered=True,
    )
    assert result["counters"] == dict(puts=0, gets=0, errors=0, latency_hist=[[0, 0], [2, 0]])
    assert [s["state"] for s in result["servers"]] == ["up", "up"]
    assert sorted(ko.probed) == SERVERS


def test_second_run_changes_nothing(monkeypatch, ko):
    present(monkeypatch, timeout_ms=5000)
    ko.writes, ko.probed = [], []
    failed, result = present(monkeypatch, timeout_ms=5000)
    assert not failed and not result["changed"]
    assert ko.writes == [] and result["actions"] == []
    assert ko.probed == []  # connected servers are not probed again


def test_check_mode_reports_without_touching(monkeypatch, ko):
    before = ko.snapshot()
    failed, result = present(monkeypatch, check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert ko.snapshot() == before
    assert result["actions"][0] == "mkdir %s/nswap0" % ko.configfs
    assert result["actions"][-1].startswith("echo 1 > ")
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["servers"] == SERVERS
    assert result["device"] == "/dev/nswap0"


def test_diff_shows_a_timeout_change(monkeypatch, ko):
    ko.create()
    failed, result = present(monkeypatch, timeout_ms=2000, diff=True)
    assert not failed and result["changed"]
    assert result["diff"]["before"]["timeout_ms"] == 10000
    assert result["diff"]["after"]["timeout_ms"] == 2000
    # timeout_ms may change while powered on: no power cycle
    assert ko.writes == [("nswap0", "timeout_ms", "2000")]


def test_host_names_are_resolved(monkeypatch, ko):
    failed, result = present(monkeypatch, servers=["localhost:7405"])
    assert not failed, result.get("msg")
    assert result["config"]["servers"] == ["127.0.0.1:7405"]


# --- changes that need power off ----------------------------------------------------


def test_resize_power_cycles_an_unused_device(monkeypatch, ko):
    ko.create(size="1G")
    failed, result = present(monkeypatch, size="2G")
    assert not failed, result.get("msg")
    assert ko.writes == [
        ("nswap0", "power", "0"),
        ("nswap0", "size", str(2 * GIB)),
        ("nswap0", "power", "1"),
    ]


def test_removing_a_server_of_an_active_swap_area_is_refused(monkeypatch, ko):
    ko.create()
    ko.swapped_on.add("/dev/nswap0")
    ko.update_swaps()
    before = ko.snapshot()
    failed, result = present(monkeypatch, servers=SERVERS[:1])
    assert failed
    assert "active swap area; swap it off first" in result["msg"]
    assert "servers" in result["msg"]
    assert ko.snapshot() == before and ko.writes == []


def test_adding_a_server_while_swapped_on_needs_no_power_off(monkeypatch, ko):
    ko.create(servers=SERVERS[:1])
    ko.swapped_on.add("/dev/nswap0")
    ko.update_swaps()
    failed, result = present(monkeypatch)
    assert not failed, result.get("msg")
    assert ko.writes == [("nswap0", "servers", "add 10.77.0.13:7405")]
    assert ko.probed == ["10.77.0.13:7405"]


def test_servers_a_gossip_feed_added_are_kept_when_asked(monkeypatch, ko):
    """keep_other_servers: a server the node's nswapd added (not in the list) stays, with
    no power cycle of the active swap area; one of the list that is missing is added."""
    fed = "10.77.0.99:7405"
    ko.create(servers=[SERVERS[0], fed])
    ko.swapped_on.add("/dev/nswap0")
    ko.update_swaps()
    failed, result = present(monkeypatch, keep_other_servers=True)
    assert not failed, result.get("msg")
    assert ko.writes == [("nswap0", "servers", "add 10.77.0.13:7405")]
    assert [s["server"] for s in result["servers"]] == [SERVERS[0], fed, SERVERS[1]]
    ko.writes.clear()
    failed, result = present(monkeypatch, keep_other_servers=True)
    assert not failed and not result["changed"] and ko.writes == []


def test_a_server_nswapd_added_meanwhile_is_no_failure_when_kept(monkeypatch, ko):
    """With keep_other_servers, an add that finds the server there (EEXIST: the node's
    nswapd added it between the module's read and its write) is done, not a failure."""
    ko.create(servers=SERVERS[:1])
    ko.swapped_on.add("/dev/nswap0")
    ko.update_swaps()
    ko.refuse[("servers", "add " + SERVERS[1])] = errno.EEXIST
    failed, result = present(monkeypatch, keep_other_servers=True)
    assert not failed, result.get("msg")
    failed, result = present(monkeypatch)  # without: the kernel's refusal is reported
    assert failed and "File exists" in result["msg"]


# --- failures leave the node as it was ----------------------------------------------


def test_unanswering_server_fails_before_any_change(monkeypatch, ko):
    ko.dead_servers.add("10.77.0.13:7405")
    failed, result = present(monkeypatch, probe_timeout=1)
    assert failed
    assert (
        "server 10.77.0.13:7405 does not answer an nswap STATUS request within 1s"
        in (result["msg"])
    )
    assert "systemctl status nswapd" in result["msg"]
    assert ko.snapshot() == {} and ko.writes == []


def test_unresolvable_server_names_the_problem(monkeypatch, ko):
    failed, result = present(monkeypatch, servers=["no-such-host.invalid:7405"])
    assert failed
    assert "cannot resolve 'no-such-host.invalid'" in result["msg"]
    assert ko.snapshot() == {}


def test_kernel_refusal_removes_a_new_device(monkeypatch, ko):
    ko.refuse[("power", "1")] = errno.EINVAL
    failed, result = present(monkeypatch)
    assert failed
    assert "nswap.ko refused '1' for nswap0/power: Invalid argument" in result["msg"]
    assert "dmesg" in result["msg"]
    assert ko.items() == []


def test_kernel_refusal_restores_an_existing_device(monkeypatch, ko):
    ko.create(size="1G")
    before = ko.snapshot()
    ko.refuse[("size", str(2 * GIB))] = errno.EINVAL
    failed, result = present(monkeypatch, size="2G")
    assert failed
    # powered off for the resize, then back to 1G, powered on, same servers
    item = ko.configfs / "nswap0"
    assert ko.attr(item, "size") == str(GIB) and ko.attr(item, "power") == "1"
    assert ko.snapshot() == before


def test_check_mode_on_a_node_without_nswap_ko_reports_the_device(monkeypatch, ko, bare, warnings):
    failed, result = present(monkeypatch, check_mode=True, diff=True, timeout_ms=5000)
    assert not failed, result.get("msg")
    assert result["changed"] and result["device"] == "/dev/nswap0"
    configfs = os.path.join(str(bare), nswap_ko.CONFIGFS)
    assert result["actions"] == [
        "mkdir %s/nswap0" % configfs,
        "echo %d > %s/nswap0/size" % (GIB, configfs),
        "echo 5000 > %s/nswap0/timeout_ms" % configfs,
        "echo add 10.77.0.12:7405 > %s/nswap0/servers" % configfs,
        "echo add 10.77.0.13:7405 > %s/nswap0/servers" % configfs,
        "echo 1 > %s/nswap0/power" % configfs,
    ]
    wanted = dict(size=GIB, servers=SERVERS, timeout_ms=5000, powered=True)
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"] == wanted and result["config"] == wanted
    assert [s["state"] for s in result["servers"]] == ["idle", "idle"]
    assert "counters" not in result
    assert any("nswap.ko is not loaded" in w for w in warnings)
    assert tree(bare) == ["proc"] and ko.writes == []


def test_check_mode_without_nswap_ko_warns_about_servers_not_up_yet(
    monkeypatch, ko, bare, warnings
):
    ko.dead_servers.add("10.77.0.13:7405")
    failed, result = present(monkeypatch, check_mode=True, probe_timeout=1)
    assert not failed and result["changed"]
    assert any("server 10.77.0.13:7405 does not answer" in w for w in warnings)
    assert tree(bare) == ["proc"]


def test_check_mode_without_nswap_ko_still_checks_the_input(monkeypatch, ko, bare):
    failed, result = run(monkeypatch, check_mode=True, servers=SERVERS)
    assert failed and "size is required to create nswap0" in result["msg"]
    failed, result = present(monkeypatch, check_mode=True, size="1000")
    assert failed and "multiple of 4096" in result["msg"]


def test_without_nswap_ko_the_error_names_the_fix(monkeypatch, ko, bare):
    failed, result = present(monkeypatch)
    assert failed
    assert result["msg"].startswith("cannot create nswap0: nswap.ko is not loaded (no ")
    assert "modprobe nswap" in result["msg"]
    assert "nswap.cluster.nswap_kmod role" in result["msg"]
    assert result["actions"] == [] and tree(bare) == ["proc"]


def test_unmounted_configfs_is_named(monkeypatch, ko, bare):
    (bare / nswap_ko.SYS_MODULE).mkdir(parents=True)
    failed, result = present(monkeypatch)
    assert failed
    assert "nswap.ko is loaded but" in result["msg"]
    assert "configfs is not mounted at %s" % (bare / nswap_ko.CONFIGFS_MOUNT) in result["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (dict(size="1000"), "nswap needs a non-zero multiple of 4096 bytes up to 16T"),
        (dict(size="lots"), "size='lots' is not a size"),
        (dict(size="17T"), "up to 16T"),
        (dict(servers=[]), "servers is empty"),
        (dict(servers=["10.0.0.1"]), "server '10.0.0.1' is not ADDR:PORT"),
        (dict(servers=["10.0.0.1:70000"]), "is not ADDR:PORT"),
        (dict(timeout_ms=50), "timeout_ms=50 is out of range; nswap accepts 100..3600000"),
        (dict(retries=101), "retries=101 is out of range; nswap accepts 0..100"),
        (dict(connections_per_server=0), "connections_per_server=0 is out of range"),
        (dict(name="../etc"), "name='../etc' is not a configfs item name"),
    ],
)
def test_bad_input_names_the_problem_and_changes_nothing(monkeypatch, ko, args, message):
    failed, result = present(monkeypatch, **args)
    assert failed
    assert message in result["msg"]
    assert ko.snapshot() == {} and ko.writes == []


def test_creating_without_size_asks_for_one(monkeypatch, ko):
    failed, result = run(monkeypatch, servers=SERVERS)
    assert failed and "size is required to create nswap0" in result["msg"]


# --- removing ---------------------------------------------------------------------


def test_absent_powers_off_and_removes(monkeypatch, ko):
    ko.create()
    failed, result = run(monkeypatch, state="absent", diff=True)
    assert not failed and result["changed"]
    assert ko.writes == [("nswap0", "power", "0")]
    assert ko.items() == [] and ko.snapshot() == {}
    assert result["diff"]["after"] == {}


def test_absent_refuses_an_active_swap_area(monkeypatch, ko):
    ko.create()
    ko.swapped_on.add("/dev/nswap0")
    ko.update_swaps()
    before = ko.snapshot()
    failed, result = run(monkeypatch, state="absent")
    assert failed
    assert (
        "/dev/nswap0 is an active swap area; swap it off first (swapoff /dev/nswap0"
        in (result["msg"])
    )
    assert ko.snapshot() == before


def test_absent_twice_and_in_check_mode(monkeypatch, ko):
    ko.create()
    before = ko.snapshot()
    failed, result = run(monkeypatch, state="absent", check_mode=True)
    assert not failed and result["changed"] and ko.snapshot() == before
    run(monkeypatch, state="absent")
    failed, result = run(monkeypatch, state="absent")
    assert not failed and not result["changed"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_absent_without_the_module_loaded_is_fine(monkeypatch, ko, bare, check_mode):
    failed, result = run(monkeypatch, state="absent", check_mode=check_mode)
    assert not failed and not result["changed"]
    assert result["actions"] == [] and tree(bare) == ["proc"]


# --- pure helpers -------------------------------------------------------------------


def test_ipv6_servers_keep_their_brackets():
    assert nswap_ko.split_server("[fd00::2]:7405") == ("fd00::2", 7405)
    assert nswap_ko.format_server("fd00::2", 7405) == "[fd00::2]:7405"
    assert util.resolve_server("[::1]:7405") == "[::1]:7405"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("1073741824", GIB),
        (GIB, GIB),
        ("512M", 512 << 20),  # M is MiB, as for nswap.ko's own suffixes
        ("512MB", 512 << 20),
        ("512MiB", 512 << 20),
        ("1G", GIB),
        ("1.5G", 3 * GIB // 2),
        ("16T", 16 << 40),
        ("4K", 4096),
    ],
)
def test_device_sizes(value, size):
    assert util.device_size(value) == size


def test_plan_only_asks_for_power_off_when_powered():
    current = dict(
        size=GIB,
        servers=SERVERS,
        connections_per_server=2,
        timeout_ms=10000,
        retries=3,
        powered=False,
    )
    wanted = dict(current, size=2 * GIB, servers=SERVERS[:1])
    writes, offline = util.plan(current, wanted)
    assert writes == [("size", str(2 * GIB)), ("servers", "del 10.77.0.13:7405")]
    assert not offline
    assert util.plan(dict(current, powered=True), wanted)[1]


def test_migration_is_set_with_the_device_powered_off(monkeypatch, ko):
    failed, result = present(monkeypatch, migration=True)
    assert not failed, result.get("msg")
    assert ("nswap0", "migration", "1") in ko.writes
    assert ko.writes.index(("nswap0", "migration", "1")) < ko.writes.index(("nswap0", "power", "1"))
    assert result["config"]["migration"] == 1
    # on a powered, unused device: a power cycle; the same again changes nothing
    ko.writes = []
    failed, result = present(monkeypatch, migration=False)
    assert not failed, result.get("msg")
    assert ko.writes == [
        ("nswap0", "power", "0"),
        ("nswap0", "migration", "0"),
        ("nswap0", "power", "1"),
    ]
    ko.writes = []
    failed, result = present(monkeypatch, migration=False)
    assert not failed and not result["changed"] and ko.writes == []
    # not set: left alone
    failed, result = present(monkeypatch)
    assert not failed and not result["changed"]


# --- backing (disk fallback) -------------------------------------------------------


@pytest.fixture
def backing_size(monkeypatch):
    """Sizes of the fake block devices the backing option may name (bytes by path)."""
    sizes = {"/dev/vdb": 2 * GIB, "/dev/vdc": GIB // 2}

    def size(path):
        if path not in sizes:
            raise ValueError("backing %s: No such file or directory" % path)
        return sizes[path]

    monkeypatch.setattr(module, "backing_device_size", size)
    return sizes


def test_backing_is_set_with_the_device_powered_off(monkeypatch, ko, backing_size):
    failed, result = present(monkeypatch, backing="/dev/vdb")
    assert not failed, result.get("msg")
    assert ko.writes.index(("nswap0", "backing", "/dev/vdb")) < ko.writes.index(
        ("nswap0", "power", "1")
    )
    assert result["config"]["backing"] == "/dev/vdb"
    ko.writes = []
    failed, result = present(monkeypatch, backing="/dev/vdb")
    assert not failed and not result["changed"] and ko.writes == []
    # none: a power cycle of the unused device; not set: left alone
    failed, result = present(monkeypatch, backing="")
    assert not failed, result.get("msg")
    assert ko.writes == [
        ("nswap0", "power", "0"),
        ("nswap0", "backing", ""),
        ("nswap0", "power", "1"),
    ]
    assert result["config"]["backing"] == ""
    ko.writes = []
    failed, result = present(monkeypatch)
    assert not failed and not result["changed"] and ko.writes == []


@pytest.mark.parametrize(
    "backing, message",
    [
        ("vdb", "give the absolute path of a local block device"),
        ("/dev/my disk", "give the absolute path of a local block device"),
        ("/" + "d" * 255, "give the absolute path of a local block device"),
        ("/dev/missing", "backing /dev/missing: No such file or directory (fix backing"),
        ("/dev/vdc", "backing /dev/vdc has 536870912 bytes, fewer than the device's 1073741824"),
    ],
)
def test_a_bad_backing_device_is_refused_before_anything_changes(
    monkeypatch, ko, backing_size, backing, message
):
    ko.create()
    before = ko.snapshot()
    failed, result = present(monkeypatch, backing=backing)
    assert failed and message in result["msg"], result["msg"]
    assert ko.writes == [] and ko.snapshot() == before


def test_check_mode_warns_about_a_backing_device_not_there_yet(
    monkeypatch, ko, backing_size, warnings
):
    failed, result = present(monkeypatch, check_mode=True, backing="/dev/missing")
    assert not failed and result["changed"]
    assert any("check mode: backing /dev/missing: No such file" in w for w in warnings), warnings
    assert ko.writes == []


def test_a_backing_device_the_kernel_refuses_leaves_the_device_as_it_was(
    monkeypatch, ko, backing_size
):
    ko.create()
    ko.refuse[("power", "1")] = errno.EBUSY  # e.g. held by a file system
    failed, result = present(monkeypatch, backing="/dev/vdb")
    assert failed and "refused '1' for nswap0/power" in result["msg"], result["msg"]
    item = ko.configfs / "nswap0"
    assert ko.attr(item, "backing") == ""
    # restored: old backing written back; power on again refused here by the fake, so off
    assert ("nswap0", "backing", "") in ko.writes


def test_sweep_interval_changes_without_a_power_cycle(monkeypatch, ko):
    ko.create()
    failed, result = present(monkeypatch, sweep_interval_s=600)
    assert not failed, result.get("msg")
    assert ko.writes == [("nswap0", "sweep_interval_s", "600")]
    assert result["config"]["sweep_interval_s"] == 600
    ko.writes = []
    failed, result = present(monkeypatch, sweep_interval_s=600)
    assert not failed and not result["changed"] and ko.writes == []
    failed, result = present(monkeypatch, sweep_interval_s=86401)
    assert (
        failed
        and "sweep_interval_s=86401 is out of range; nswap accepts 0..86400" in (result["msg"])
    )
