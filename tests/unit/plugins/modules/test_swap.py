"""nswap.cluster.swap run in-process against a simulated system.

FakeSystem stands in for util-linux: it keeps block devices, signatures (of devices
and of real files under tmp_path) and the kernel's table of active swap areas, and
answers the argv lists the module passes to AnsibleModule.run_command.  Swap files
are real files under tmp_path, so creating, chmod and deleting them is real too.
"""

import os
import stat

import pytest
from ansible.module_utils import basic
from ansible_collections.nswap.cluster.plugins.module_utils import swap as util
from ansible_collections.nswap.cluster.plugins.modules import swap as swap_module

from tests.unit.module_harness import run_module

MIB = 1024 * 1024
GIB = 1024 * MIB
READ_ONLY = ("blkid", "findfs")


class FakeSystem:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.devices = {}  # block device -> size in bytes
        self.sigs = {}  # real path -> blkid fields (TYPE, LABEL, UUID)
        self.active = []  # dicts like the module's swaps, plus "discard"
        self.mem_available = 4 * GIB
        self.calls = []
        self.fail = lambda argv: None  # argv -> (rc, stderr) to make a command fail
        self.fallocate_supported = True
        self.show_supported = True
        self.next_priority = -2
        self.uuids = 0

    # --- setup helpers --------------------------------------------------------

    def add_device(self, name, size=GIB, sig=None):
        self.devices[name] = size
        if sig:
            self.sigs[name] = dict(sig)

    def add_swap(self, name, used=0, priority=None, discard="none", label=None, uuid=None):
        """A swap area (device or file) that is already active."""
        real = os.path.realpath(name)
        self.sigs[real] = dict(TYPE="swap", UUID=uuid or self.new_uuid())
        if label:
            self.sigs[real]["LABEL"] = label
        self.activate(name, priority, discard)
        self.active[-1]["used"] = used

    def new_uuid(self):
        self.uuids += 1
        return "00000000-0000-4000-8000-%012d" % self.uuids

    @property
    def changes(self):
        """The calls that change something (everything but table reads and blkid)."""
        return [
            argv
            for argv in self.calls
            if argv[0] not in READ_ONLY and argv[:2] != ["swapon", swap_module.READ_SWAPS[0]]
        ]

    def swap(self, name):
        real = os.path.realpath(name)
        return next((s for s in self.active if s["name"] == real), None)

    def size_of(self, name):
        if name in self.devices:
            return self.devices[name]
        return os.path.getsize(name) if os.path.isfile(name) else None

    # --- the commands ---------------------------------------------------------

    def run_command(self, module, args):
        argv = list(args)
        self.calls.append(argv)
        failure = self.fail(argv)
        if failure:
            return failure[0], "", failure[1]
        return getattr(self, "cmd_" + argv[0])(argv[1:])

    def cmd_swapon(self, args):
        if args[0].startswith("--show"):
            if not self.show_supported:
                return 1, "", "swapon: unrecognized option '--show'"
            rows = []
            for s in self.active:
                name = s["name"].replace("\\", "\\x5c").replace(" ", "\\x20")
                rows.append("%s %s %d %d %d\n" % (name, s["type"], s["size"], s["used"], s["prio"]))
            return 0, "".join(rows), ""
        priority, discard, name = None, "none", args[-1]
        options = list(args[:-1])
        while options:
            option = options.pop(0)
            if option == "-p":
                priority = int(options.pop(0))
            elif option == "--discard":
                discard = "both"
            elif option.startswith("--discard="):
                discard = option.split("=", 1)[1]
            else:
                raise AssertionError("unexpected swapon option %r" % option)
        if self.size_of(name) is None:
            return 255, "", "swapon: cannot open %s: No such file or directory" % name
        if self.sigs.get(os.path.realpath(name), {}).get("TYPE") != "swap":
            return 255, "", "swapon: %s: read swap header failed" % name
        if self.swap(name):
            return 255, "", "swapon: %s: swapon failed: Device or resource busy" % name
        self.activate(name, priority, discard)
        return 0, "", ""

    def activate(self, name, priority, discard):
        if priority is None:
            priority = self.next_priority
            self.next_priority -= 1
        self.active.append(
            dict(
                name=os.path.realpath(name),
                type="partition" if name in self.devices else "file",
                size=self.size_of(name) - 4096,
                used=0,
                prio=priority,
                discard=discard,
            )
        )

    def cmd_swapoff(self, args):
        swap = self.swap(args[0])
        if swap is None:
            return 255, "", "swapoff: %s: swapoff failed: Invalid argument" % args[0]
        self.active.remove(swap)
        return 0, "", ""

    def cmd_blkid(self, args):
        if args[0] == "-t":
            found = self.find_tag(args[1])
            return (0, found + "\n", "") if found else (2, "", "")
        assert args[:3] == ["-p", "-o", "export"], args
        name = args[3]
        sig = self.sigs.get(os.path.realpath(name)) if self.size_of(name) is not None else None
        if not sig:
            return 2, "", ""
        lines = ["DEVNAME=%s" % name] + ["%s=%s" % kv for kv in sorted(sig.items())]
        return 0, "\n".join(lines) + "\n", ""

    def cmd_findfs(self, args):
        found = self.find_tag(args[0])
        return (0, found + "\n", "") if found else (1, "", "findfs: unable to resolve")

    def find_tag(self, spec):
        key, value = spec.split("=", 1)
        for name, sig in sorted(self.sigs.items()):
            if sig.get(key) == value and name in self.devices:
                return name
        return None

    def cmd_mkswap(self, args):
        name, options = args[-1], list(args[:-1])
        sig = dict(TYPE="swap")
        while options:
            option = options.pop(0)
            if option == "-L":
                sig["LABEL"] = options.pop(0)
            elif option == "-U":
                sig["UUID"] = options.pop(0)
            else:
                assert option == "-f", option
        sig.setdefault("UUID", self.new_uuid())
        if self.size_of(name) is None:
            return 1, "", "mkswap: cannot open %s" % name
        self.sigs[os.path.realpath(name)] = sig
        return 0, "Setting up swapspace version 1\n", ""

    def cmd_swaplabel(self, args):
        sig = self.sigs[os.path.realpath(args[-1])]
        options = list(args[:-1])
        while options:
            option = options.pop(0)
            sig["LABEL" if option == "-L" else "UUID"] = options.pop(0)
        return 0, "", ""

    def cmd_wipefs(self, args):
        assert args[:3] == ["-a", "-t", "swap,swsuspend"], args
        real = os.path.realpath(args[3])
        if self.sigs.get(real, {}).get("TYPE") in ("swap", "swsuspend"):
            del self.sigs[real]
        return 0, "", ""

    def cmd_fallocate(self, args):
        assert args[0] == "-l"
        if not self.fallocate_supported:
            return 1, "", "fallocate: fallocate failed: Operation not supported"
        with open(args[2], "ab"):
            pass
        os.truncate(args[2], int(args[1]))
        return 0, "", ""

    def cmd_dd(self, args):
        fields = dict(arg.split("=", 1) for arg in args)
        assert fields["if"] == "/dev/zero" and fields["iflag"] == "count_bytes"
        with open(fields["of"], "wb"):
            pass
        os.truncate(fields["of"], int(fields["count"]))
        return 0, "", ""

    # --- kernel files ---------------------------------------------------------

    def write_proc(self, meminfo, proc_swaps):
        meminfo.write_text(
            "MemTotal:       16000000 kB\nMemFree:          100000 kB\n"
            "MemAvailable:   %8d kB\n" % (self.mem_available // 1024)
        )
        rows = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"]
        for s in self.active:
            name = s["name"].replace(" ", "\\040")
            rows.append(
                "%s\t%s\t%d\t%d\t%d\n"
                % (name, s["type"], s["size"] // 1024, s["used"] // 1024, s["prio"])
            )
        proc_swaps.write_text("".join(rows))


@pytest.fixture
def system(monkeypatch, tmp_path):
    fake = FakeSystem(tmp_path)
    paths = dict(
        FSTAB=tmp_path / "fstab",
        PROC_SWAPS=tmp_path / "proc_swaps",
        PROC_MEMINFO=tmp_path / "meminfo",
        DISCARD_RECORD=tmp_path / "run" / "discard.json",
    )
    (tmp_path / "run").mkdir()
    for name, path in paths.items():
        monkeypatch.setattr(swap_module, name, str(path))
    monkeypatch.setattr(swap_module, "SWAPFILE_OWNER", (os.getuid(), os.getgid()))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        basic.AnsibleModule, "run_command", lambda self, args, **kw: fake.run_command(self, args)
    )
    monkeypatch.setattr(
        basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: name
    )
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: fake.warnings.append(msg))
    real_kind = swap_module.file_kind
    monkeypatch.setattr(
        swap_module, "file_kind", lambda p: "block" if p in fake.devices else real_kind(p)
    )
    fake.fstab = paths["FSTAB"]
    fake.record = paths["DISCARD_RECORD"]

    def run(args, check_mode=False):
        fake.calls = []
        fake.warnings = []
        fake.write_proc(paths["PROC_MEMINFO"], paths["PROC_SWAPS"])
        return run_module(monkeypatch, swap_module, args, check_mode=check_mode)

    fake.run = run
    return fake


def state_diff(result):
    return result["diff"][0]["before"], result["diff"][0]["after"]


# --- creating and activating ------------------------------------------------------


def test_swap_file_created_and_activated(system, tmp_path):
    path = str(tmp_path / "swapfile")
    failed, result = system.run({"path": path, "size": "64M", "priority": 5})
    assert not failed, result["msg"]
    assert result["changed"]
    assert system.changes == [
        ["fallocate", "-l", str(64 * MIB), path],
        ["mkswap", path],
        ["swapon", "-p", "5", path],
    ]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.path.getsize(path) == 64 * MIB
    assert result["path"] == path
    assert result["swaps"] == [
        dict(name=path, type="file", size=64 * MIB - 4096, used=0, priority=5)
    ]
    assert result["actions"][0] == "install -m 0600 /dev/null " + path
    assert result["actions"][-1] == "swapon -p 5 " + path
    before, after = state_diff(result)
    assert before["active"] is False and before["exists"] is False
    assert after["active"] is True and after["priority"] == 5 and after["signature"] == "swap"
    assert after["discard"] == "none"


def test_second_run_changes_nothing(system, tmp_path):
    args = {"path": str(tmp_path / "swapfile"), "size": "64M", "priority": 5, "discard": "pages"}
    assert not system.run(args)[0]
    failed, result = system.run(args)
    assert not failed and not result["changed"]
    assert system.changes == [] and result["actions"] == []
    before, after = state_diff(result)
    assert before == after


def test_device_activated_with_automatic_priority(system):
    system.add_device("/dev/vdb", sig={"TYPE": "swap", "UUID": "u1"})
    failed, result = system.run({"path": "/dev/vdb"})
    assert not failed and result["changed"]
    assert system.changes == [["swapon", "/dev/vdb"]]
    assert result["swaps"][0]["priority"] == -2
    # -1 asks for an automatic (negative) priority, which the area has
    failed, result = system.run({"path": "/dev/vdb", "priority": -1})
    assert not failed and not result["changed"] and system.changes == []


def test_device_without_signature_gets_mkswap_with_label_and_uuid(system):
    system.add_device("/dev/vdb")
    uuid = "0b3e2c4a-1d2f-4a5b-9c8d-7e6f5a4b3c2d"
    failed, result = system.run(
        {"path": "/dev/vdb", "state": "present", "label": "fast", "uuid": uuid.upper()}
    )
    assert not failed and result["changed"]
    assert system.changes == [["mkswap", "-L", "fast", "-U", uuid, "/dev/vdb"]]
    assert system.sigs["/dev/vdb"] == {"TYPE": "swap", "LABEL": "fast", "UUID": uuid}
    assert system.active == []
    failed, result = system.run({"path": "/dev/vdb", "state": "present", "label": "fast"})
    assert not failed and not result["changed"]


def test_file_with_spaces_in_its_path(system, tmp_path):
    path = str(tmp_path / "my swap")
    failed, result = system.run({"path": path, "size": "1M"})
    assert not failed and result["changed"]
    assert result["swaps"][0]["name"] == path
    failed, result = system.run({"path": path, "size": "1M"})
    assert not failed and not result["changed"] and system.changes == []


def test_symlink_is_matched_by_real_path(system, tmp_path):
    target = tmp_path / "swapfile"
    link = tmp_path / "by-id-link"
    assert not system.run({"path": str(target), "size": "1M", "priority": 3})[0]
    link.symlink_to(target)
    failed, result = system.run({"path": str(link), "priority": 3})
    assert not failed and not result["changed"] and system.changes == []
    assert result["path"] == str(target)


def test_label_spec_resolved_with_blkid(system):
    system.add_device("/dev/vdc", sig={"TYPE": "swap", "LABEL": "fast", "UUID": "u2"})
    failed, result = system.run({"path": "LABEL=fast", "priority": 7})
    assert not failed and result["changed"]
    assert ["blkid", "-t", "LABEL=fast", "-o", "device"] in system.calls
    assert system.changes == [["swapon", "-p", "7", "/dev/vdc"]]
    assert result["path"] == "/dev/vdc"


def test_proc_swaps_used_when_swapon_cannot_show(system):
    system.show_supported = False
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", priority=4)
    failed, result = system.run({"path": "/dev/vdb", "priority": 4})
    assert not failed and not result["changed"]
    assert result["swaps"][0]["name"] == "/dev/vdb" and result["swaps"][0]["priority"] == 4


def test_dd_when_fallocate_is_not_supported(system, tmp_path):
    system.fallocate_supported = False
    path = str(tmp_path / "swapfile")
    failed, result = system.run({"path": path, "size": "2M", "state": "inactive"})
    assert not failed and result["changed"]
    assert system.changes == [
        ["fallocate", "-l", str(2 * MIB), path],
        ["dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=%d" % (2 * MIB)]
        + ["iflag=count_bytes", "status=none"],
        ["mkswap", path],
    ]
    assert os.path.getsize(path) == 2 * MIB and system.active == []


def test_insecure_swap_file_mode_is_fixed(system, tmp_path):
    path = tmp_path / "swapfile"
    assert not system.run({"path": str(path), "size": "1M", "state": "present"})[0]
    path.chmod(0o644)
    failed, result = system.run({"path": str(path), "state": "present"})
    assert not failed and result["changed"]
    assert result["actions"] == ["chmod 0600 " + str(path)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- changing an active area ------------------------------------------------------


def test_priority_change_swaps_off_and_on(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", used=100 * MIB, priority=5)
    failed, result = system.run({"path": "/dev/vdb", "priority": 10})
    assert not failed and result["changed"]
    assert system.changes == [["swapoff", "/dev/vdb"], ["swapon", "-p", "10", "/dev/vdb"]]
    assert result["actions"] == ["swapoff /dev/vdb", "swapon -p 10 /dev/vdb"]
    before, after = state_diff(result)
    assert (before["priority"], after["priority"]) == (5, 10)


def test_swapoff_refused_when_pages_do_not_fit(system):
    system.mem_available = 100 * MIB
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", used=GIB, priority=5)
    failed, result = system.run({"path": "/dev/vdb", "priority": 10})
    assert failed
    needed = -(-util.swapoff_need(GIB) // MIB)
    assert result["msg"] == (
        "swapoff /dev/vdb would need %d MiB but only 100 MiB are available (MemAvailable + "
        "free space on other swap areas); free memory or add swap first. Nothing was changed."
        % needed
    )
    assert system.changes == [] and result["actions"] == []
    assert system.swap("/dev/vdb")["prio"] == 5


def test_free_space_on_other_swap_areas_counts(system):
    system.mem_available = 100 * MIB
    system.add_device("/dev/vdb")
    system.add_device("/dev/vdc", size=4 * GIB)
    system.add_swap("/dev/vdb", used=GIB, priority=5)
    system.add_swap("/dev/vdc", used=0, priority=1)
    failed, result = system.run({"path": "/dev/vdb", "state": "inactive"})
    assert not failed and result["changed"]
    assert system.changes == [["swapoff", "/dev/vdb"]]
    assert [s["name"] for s in result["swaps"]] == ["/dev/vdc"]


@pytest.mark.parametrize("state", ["inactive", "absent"])
def test_inactive_and_absent_refused_when_pages_do_not_fit(system, state):
    system.mem_available = 0
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", used=10 * MIB)
    failed, result = system.run({"path": "/dev/vdb", "state": state})
    assert failed and "swapoff /dev/vdb would need 75 MiB but only 0 MiB" in result["msg"]
    assert system.changes == []


def test_swapoff_failure_changes_nothing(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", priority=5)
    system.fail = lambda argv: (
        (255, "swapoff: /dev/vdb: Cannot allocate memory") if (argv[0] == "swapoff") else None
    )
    failed, result = system.run({"path": "/dev/vdb", "priority": 10})
    assert failed
    assert (
        "swapoff /dev/vdb failed (rc=255): swapoff: /dev/vdb: Cannot allocate memory"
        in (result["msg"])
    )
    assert system.changes == [["swapoff", "/dev/vdb"]]
    assert system.swap("/dev/vdb")["prio"] == 5


def test_failed_swapon_re_enables_old_settings(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", priority=5)
    system.fail = lambda argv: (
        (255, "swapon: /dev/vdb: Invalid argument")
        if (argv[:3] == ["swapon", "-p", "10"])
        else None
    )
    failed, result = system.run({"path": "/dev/vdb", "priority": 10})
    assert failed
    assert "swapon /dev/vdb failed (rc=255): swapon: /dev/vdb: Invalid argument" in result["msg"]
    assert "re-enabled it with its previous settings" in result["msg"]
    assert system.changes == [
        ["swapoff", "/dev/vdb"],
        ["swapon", "-p", "10", "/dev/vdb"],
        ["swapon", "-p", "5", "/dev/vdb"],
    ]
    assert system.swap("/dev/vdb")["prio"] == 5


def test_failed_swapon_and_failed_restore_are_both_reported(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", priority=5)
    system.fail = lambda argv: (255, "no luck") if argv[:2] == ["swapon", "-p"] else None
    failed, result = system.run({"path": "/dev/vdb", "priority": 10})
    assert failed
    assert "failed too (rc=255): no luck; /dev/vdb is now inactive" in result["msg"]
    assert system.active == []


def test_label_change_on_active_area_keeps_its_priority(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", priority=5, label="old", discard="once")
    assert not system.run({"path": "/dev/vdb", "discard": "once"})[0]  # records discard
    failed, result = system.run({"path": "/dev/vdb", "label": "new"})
    assert not failed and result["changed"]
    assert system.changes == [
        ["swapoff", "/dev/vdb"],
        ["swaplabel", "-L", "new", "/dev/vdb"],
        ["swapon", "-p", "5", "--discard=once", "/dev/vdb"],
    ]


def test_resize_of_swap_file_needs_force(system, tmp_path):
    path = str(tmp_path / "swapfile")
    assert not system.run(
        {"path": path, "size": "1M", "uuid": "0b3e2c4a-1d2f-4a5b-9c8d-7e6f5a4b3c2d"}
    )[0]
    failed, result = system.run({"path": path, "size": "2M"})
    assert failed and "is 1048576 bytes, not size=2M (2097152 bytes)" in result["msg"]
    assert "force: true" in result["msg"] and system.changes == []
    failed, result = system.run({"path": path, "size": "2M", "force": True})
    assert not failed and result["changed"]
    assert system.changes == [
        ["swapoff", path],
        ["fallocate", "-l", str(2 * MIB), path],
        ["mkswap", "-f", "-U", "0b3e2c4a-1d2f-4a5b-9c8d-7e6f5a4b3c2d", path],
        ["swapon", path],
    ]
    assert os.path.getsize(path) == 2 * MIB
    assert result["actions"][1] == "rm -f " + path


# --- discard ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("discard", "flags"),
    [
        ("none", []),
        ("once", ["--discard=once"]),
        ("pages", ["--discard=pages"]),
        ("both", ["--discard"]),
    ],
)
def test_discard_options(system, discard, flags):
    system.add_device("/dev/vdb", sig={"TYPE": "swap", "UUID": "u1"})
    failed, result = system.run({"path": "/dev/vdb", "discard": discard, "priority": 1})
    assert not failed and result["changed"]
    assert system.changes == [["swapon", "-p", "1"] + flags + ["/dev/vdb"]]
    assert system.swap("/dev/vdb")["discard"] == discard
    failed, result = system.run({"path": "/dev/vdb", "discard": discard, "priority": 1})
    assert not failed and not result["changed"], "the policy used is remembered"


def test_discard_change_swaps_off_and_on(system):
    system.add_device("/dev/vdb", sig={"TYPE": "swap", "UUID": "u1"})
    assert not system.run({"path": "/dev/vdb", "discard": "none"})[0]
    failed, result = system.run({"path": "/dev/vdb", "discard": "both"})
    assert not failed and result["changed"]
    assert system.changes == [["swapoff", "/dev/vdb"], ["swapon", "--discard", "/dev/vdb"]]
    before, after = state_diff(result)
    assert (before["discard"], after["discard"]) == ("none", "both")


def test_unknown_discard_is_taken_from_fstab(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", priority=2)  # activated at boot, nothing recorded
    system.fstab.write_text("/dev/vdb none swap sw,pri=2,discard=pages 0 0\n")
    failed, result = system.run({"path": "/dev/vdb", "priority": 2, "discard": "pages"})
    assert not failed and not result["changed"]


def test_unknown_discard_applied_once(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", priority=2)
    failed, result = system.run({"path": "/dev/vdb", "discard": "pages"})
    assert not failed and result["changed"]
    assert state_diff(result)[0]["discard"] == "unknown"
    assert system.changes == [
        ["swapoff", "/dev/vdb"],
        ["swapon", "-p", "2", "--discard=pages", "/dev/vdb"],
    ]
    failed, result = system.run({"path": "/dev/vdb", "discard": "pages"})
    assert not failed and not result["changed"]


# --- check mode -------------------------------------------------------------------


def test_check_mode_runs_nothing(system, tmp_path):
    path = str(tmp_path / "swapfile")
    failed, result = system.run(
        {"path": path, "size": "64M", "priority": 5, "persistent": True}, check_mode=True
    )
    assert not failed and result["changed"]
    assert system.changes == []
    assert not os.path.exists(path) and not system.fstab.exists()
    assert result["actions"] == [
        "install -m 0600 /dev/null " + path,
        "fallocate -l %d %s" % (64 * MIB, path),
        "mkswap " + path,
        "swapon -p 5 " + path,
    ]
    before, after = state_diff(result)
    assert before["active"] is False and after["active"] is True and after["priority"] == 5
    assert before["fstab"] is None and after["fstab"] == path + " none swap sw,pri=5 0 0"
    assert result["diff"][1]["after"] == path + " none swap sw,pri=5 0 0\n"


def test_check_mode_priority_change(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", used=MIB, priority=5)
    failed, result = system.run({"path": "/dev/vdb", "priority": 6}, check_mode=True)
    assert not failed and result["changed"]
    assert result["actions"] == ["swapoff /dev/vdb", "swapon -p 6 /dev/vdb"]
    assert system.changes == [] and system.swap("/dev/vdb")["prio"] == 5
    assert state_diff(result)[1]["priority"] == 6


# --- /etc/fstab -------------------------------------------------------------------

FSTAB = (
    "# /etc/fstab: static file system information.\n"
    "UUID=1111-2222 /               ext4    errors=remount-ro 0       1\n"
    "\n"
    "#/dev/vdb none swap sw 0 0\n"
    "tmpfs /tmp tmpfs defaults,size=1g 0 0\n"
)


def test_fstab_line_added_updated_removed(system):
    system.add_device("/dev/vdb", sig={"TYPE": "swap", "UUID": "u1"})
    system.fstab.write_text(FSTAB)
    args = {"path": "/dev/vdb", "priority": 5, "persistent": True}
    failed, result = system.run(args)
    assert not failed and result["changed"]
    assert system.fstab.read_text() == FSTAB + "/dev/vdb none swap sw,pri=5 0 0\n"
    assert result["diff"][1]["before"] == FSTAB
    assert result["diff"][1]["before_header"] == str(system.fstab)

    failed, result = system.run(args)
    assert not failed and not result["changed"] and len(result["diff"]) == 1

    # update in place; options the module does not manage stay
    system.fstab.write_text(
        FSTAB.replace("\n\n", "\n/dev/vdb\tnone\tswap\tsw,pri=5,nofail\t0\t0\n\n")
    )
    failed, result = system.run(dict(args, priority=9, discard="once"))
    assert not failed and result["changed"]
    assert system.fstab.read_text() == FSTAB.replace(
        "\n\n", "\n/dev/vdb none swap sw,pri=9,discard=once,nofail 0 0\n\n"
    )

    failed, result = system.run({"path": "/dev/vdb", "state": "inactive", "persistent": True})
    assert not failed and result["changed"]
    assert system.fstab.read_text() == FSTAB


def test_fstab_line_describes_the_active_area(system):
    system.add_device("/dev/vdb", sig={"TYPE": "swap", "UUID": "u1"})
    assert not system.run({"path": "/dev/vdb", "priority": 4, "discard": "once"})[0]
    failed, result = system.run({"path": "/dev/vdb", "persistent": True})
    assert not failed and result["changed"] and system.changes == []
    assert system.fstab.read_text() == "/dev/vdb none swap sw,pri=4,discard=once 0 0\n"


def test_fstab_line_found_by_uuid_and_kept_when_equivalent(system):
    system.add_device("/dev/vdb", sig={"TYPE": "swap", "UUID": "abc"})
    system.add_swap("/dev/vdb", priority=5, uuid="abc")
    text = FSTAB + "UUID=abc  none  swap  sw,pri=5  0  0\n"
    system.fstab.write_text(text)
    failed, result = system.run({"path": "UUID=abc", "priority": 5, "persistent": True})
    assert not failed and not result["changed"]
    assert system.fstab.read_text() == text
    failed, result = system.run({"path": "/dev/vdb", "state": "absent", "persistent": True})
    assert not failed and result["changed"]
    assert system.fstab.read_text() == FSTAB


def test_fstab_left_alone_without_persistent(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb")
    text = FSTAB + "/dev/vdb none swap sw 0 0\n"
    system.fstab.write_text(text)
    failed, result = system.run({"path": "/dev/vdb", "state": "inactive"})
    assert not failed and result["changed"]
    assert system.fstab.read_text() == text
    assert "set persistent: true to remove it" in system.warnings[0]


def test_fstab_path_with_space_is_escaped(system, tmp_path):
    path = str(tmp_path / "my swap")
    failed, result = system.run({"path": path, "size": "1M", "persistent": True})
    assert not failed
    assert system.fstab.read_text() == path.replace(" ", "\\040") + " none swap sw 0 0\n"
    failed, result = system.run({"path": path, "size": "1M", "persistent": True})
    assert not failed and not result["changed"]


# --- absent -----------------------------------------------------------------------


def test_absent_device_is_swapped_off_and_wiped(system):
    system.add_device("/dev/vdb")
    system.add_swap("/dev/vdb", used=MIB)
    failed, result = system.run({"path": "/dev/vdb", "state": "absent"})
    assert not failed and result["changed"]
    assert system.changes == [
        ["swapoff", "/dev/vdb"],
        ["wipefs", "-a", "-t", "swap,swsuspend", "/dev/vdb"],
    ]
    assert "/dev/vdb" not in system.sigs and result["swaps"] == []
    before, after = state_diff(result)
    assert before["signature"] == "swap" and after["signature"] is None
    failed, result = system.run({"path": "/dev/vdb", "state": "absent"})
    assert not failed and not result["changed"] and system.changes == []


def test_absent_file_is_swapped_off_and_removed(system, tmp_path):
    path = str(tmp_path / "swapfile")
    assert not system.run({"path": path, "size": "1M"})[0]
    failed, result = system.run({"path": path, "state": "absent"})
    assert not failed and result["changed"]
    assert system.changes == [["swapoff", path]]
    assert result["actions"] == ["swapoff " + path, "rm -f " + path]
    assert not os.path.exists(path) and system.active == []
    failed, result = system.run({"path": path, "state": "absent"})
    assert not failed and not result["changed"]


def test_absent_leaves_a_file_that_is_not_swap(system, tmp_path):
    path = tmp_path / "data.img"
    path.write_bytes(b"precious")
    failed, result = system.run({"path": str(path), "state": "absent"})
    assert not failed and not result["changed"] and path.exists()
    assert "not a swap area" in system.warnings[0]


# --- refusals and bad input ---------------------------------------------------------


def test_refuses_mkswap_over_ext4_without_force(system):
    system.add_device("/dev/vdb", sig={"TYPE": "ext4", "UUID": "fs"})
    failed, result = system.run({"path": "/dev/vdb"})
    assert failed
    assert (
        "/dev/vdb holds an existing ext4 signature (blkid -p); refusing to overwrite it"
        in result["msg"]
    )
    assert "force: true" in result["msg"] and system.changes == []
    failed, result = system.run({"path": "/dev/vdb", "force": True})
    assert not failed and result["changed"]
    assert system.changes == [["mkswap", "-f", "/dev/vdb"], ["swapon", "/dev/vdb"]]


def test_refuses_mkswap_over_partition_table(system):
    system.add_device("/dev/vdb", sig={"PTTYPE": "gpt"})
    failed, result = system.run({"path": "/dev/vdb", "state": "present"})
    assert failed and "holds an existing gpt partition table signature" in result["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"priority": 40000}, "priority=40000 is out of range; the valid range is -1..32767"),
        ({"priority": -2}, "priority=-2 is out of range; the valid range is -1..32767"),
        ({"size": "1G"}, "size applies to swap files only; /dev/vdb is a block device"),
        ({"size": "lots"}, "size='lots' is not a size"),
        ({"label": "x" * 17}, "a swap label holds at most 16 bytes"),
        ({"uuid": "nope"}, "uuid='nope' is not a UUID"),
        ({"path": "swapfile", "size": "1M"}, "path='swapfile' is relative"),
        ({"path": "/dev/vdz"}, "block device /dev/vdz does not exist"),
        ({"path": "LABEL=nothing"}, "LABEL=nothing does not match any block device"),
        ({"path": "LABEL=a", "label": "b"}, "label=b would change the LABEL"),
    ],
)
def test_bad_input(system, args, message):
    system.add_device("/dev/vdb", sig={"TYPE": "swap", "UUID": "u1"})
    failed, result = system.run(dict({"path": "/dev/vdb"}, **args))
    assert failed and message in result["msg"]
    assert system.changes == []


def test_missing_file_without_size(system, tmp_path):
    path = str(tmp_path / "swapfile")
    failed, result = system.run({"path": path, "state": "active"})
    assert failed
    assert result["msg"] == (
        "%s does not exist; set size to create a swap file there, or point path at an "
        "existing block device" % path
    )
    failed, result = system.run({"path": str(tmp_path / "no" / "swapfile"), "size": "1M"})
    assert failed and "directory %s does not exist" % (tmp_path / "no") in result["msg"]


def test_size_too_small(system, tmp_path):
    failed, result = system.run({"path": str(tmp_path / "s"), "size": "4K"})
    assert failed and "a swap area needs at least 10 pages" in result["msg"]


def test_not_root(system, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    failed, result = system.run({"path": "/dev/vdb"})
    assert failed and "must run as root" in result["msg"] and "become: true" in result["msg"]
    assert system.calls == []
