"""Verify the default scenario: nswap deployed on the lab (1 client, 2 servers).

Runs on the controller (molecule verify, testinfra over the lab inventory).  Besides
the state of each node it checks that playbooks/smoke.yml sees every node and reaches
every server over TCP at its nswap address, that pages really reach the servers under memory
pressure, that `--check --diff` of a changed setting shows exactly that change and
makes none, and that a deploy with bad input fails with the fix and changes nothing.
(molecule's own idempotence and check steps ran before this.)  Every wait is bounded.
"""

import json
import os
import re
import shlex
import subprocess
import time

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(SCENARIO))
INVENTORY = os.path.expanduser("~/.cache/nswap/labs/molecule/inventory.yml")
DEPLOY_VARS = os.path.join(SCENARIO, "vars", "deploy.yml")
INSTALLED = os.path.join(REPO, "build", "installed", "collections")
# Written by converge.yml in check mode: each node's nswap state before and after a check run.
CHECK_STATES = os.path.expanduser("~/.cache/nswap/labs/molecule/check-states.jsonl")
RUNNER = AnsibleRunner(INVENTORY)
CLIENTS = RUNNER.get_hosts("nswap_clients")
SERVERS = RUNNER.get_hosts("nswap_servers")
CONFIG = "/sys/kernel/config/nswap/nswap0"
COUNTERS = "/sys/block/nswap0/nswap"
HOG_UNIT = "nswap-verify-hog"
# Allocates as much as the node's RAM and touches every page, then holds the memory:
# the kernel must swap a few hundred MiB, first to nswap (the higher priority).
HOG = (
    "import time; n = int(open('/proc/meminfo').read().split()[1]) * 1024; "
    "b = bytearray(n)\n"
    "for i in range(0, n, 4096): b[i] = 1\n"
    "time.sleep(900)"
)
PAGES_OUT = 10000  # 40 MiB


def host(name):
    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, INVENTORY))


def deploy_vars():
    with open(DEPLOY_VARS) as handle:
        return dict(re.findall(r"^(\w+): (\S+)$", handle.read(), re.M))


def nswap_address(name):
    return RUNNER.get_variables(name)["nswap_address"]


def swaps(node):
    """{real path: priority} of the node's active swap areas."""
    lines = node.file("/proc/swaps").content_string.splitlines()[1:]
    return {fields[0]: int(fields[4]) for fields in (line.split() for line in lines)}


def in_lab_netns(name, code):
    """Run Python CODE (with nswap_protocol imported as p) in the lab's namespace, where
    NAME's nswap address is reachable over the private segment; its stdout."""
    prologue = "import json, sys; sys.path.insert(0, %r); import nswap_protocol as p; " % (
        os.path.join(REPO, "plugins", "module_utils")
    )
    netns = RUNNER.get_variables(name)["nswap_lab_netns"]
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "python3", "-c", prologue + code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def server_status(name):
    """nswapd's STATUS counters."""
    code = "c = p.Client(%r, 7405, timeout=10); print(json.dumps(c.status()._asdict()))" % (
        nswap_address(name)
    )
    return json.loads(in_lab_netns(name, code))


# A client_id no lab node uses (nswap.ko derives its own from the node).
VERIFY_CLIENT_ID = 0x6E737761705F7665


def put_pages(name, count):
    """Store COUNT pages in NAME's nswapd as a client of the test's own: pages that are not
    the lab client's memory, so a restart that drops them can harm no process.  Returns
    how many were refused."""
    code = (
        "c = p.Client(%r, 7405, timeout=10); c.hello(%d, name='molecule-verify'); "
        "print(sum(c.put(s, 1, bytes([s %% 251]) * p.PAGE_SIZE) != p.OK for s in range(%d)))"
    ) % (nswap_address(name), VERIFY_CLIENT_ID, count)
    return int(in_lab_netns(name, code))


def installed(command, *args, timeout=1500):
    """(rc, output) of an ansible COMMAND (ansible-playbook, ansible) on the lab's inventory
    with the installed collection (the one converge used)."""
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_DEPRECATION_WARNINGS="0")
    env["PATH"] = "%s:%s" % (os.path.join(REPO, ".venv", "bin"), os.environ["PATH"])
    if os.path.isdir(INSTALLED):
        env["ANSIBLE_COLLECTIONS_PATH"] = INSTALLED
    argv = [os.path.join(REPO, ".venv", "bin", command), "-i", INVENTORY] + list(args)
    proc = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def installed_playbook(name, *args, timeout=1500):
    """nswap.cluster.NAME from the installed collection."""
    return installed("ansible-playbook", "nswap.cluster.%s" % name, *args, timeout=timeout)


def nswap_server_module(name, args):
    """nswap.cluster.nswap_server with ARGS (key=value words) on NAME, at its address."""
    args += " address=%s port=7405" % nswap_address(name)
    return installed("ansible", name, "-b", "-m", "nswap.cluster.nswap_server", "-a", args)


def playbook(*args, timeout=1500):
    """nswap.cluster.deploy with the scenario's deploy variables."""
    return installed_playbook("deploy", "-e", "@" + DEPLOY_VARS, *args, timeout=timeout)


def recap(output):
    hosts = {}
    for line in output.split("PLAY RECAP", 1)[-1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line.strip())
        if match:
            counts = re.findall(r"(\w+)=(\d+)", match.group(2))
            hosts[match.group(1)] = {key: int(value) for key, value in counts}
    return hosts


@pytest.fixture(scope="module")
def client():
    return host(CLIENTS[0])


# --- the check step on the never-deployed lab ------------------------------------


def test_first_check_found_nothing_and_changed_nothing():
    with open(CHECK_STATES) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    hosts = set(CLIENTS + SERVERS)
    # molecule's one check step, before converge: each node's state before, then after
    assert len(records) == 2 * len(hosts), records
    first = records
    before = {r["host"]: r["state"] for r in first if r["when"] == "before"}
    after = {r["host"]: r["state"] for r in first if r["when"] == "after"}
    assert set(before) == set(after) == hosts, records
    for name in hosts:
        assert before[name] == after[name], (name, before[name], after[name])
        assert "/usr/local/sbin/nswapd" not in before[name], before[name]
        assert "dkms:" not in before[name] and "/sys/module/nswap" not in before[name]
        assert "package:" not in before[name]
        assert "nswapd: active" not in before[name]


# --- state after converge ----------------------------------------------------------


def test_module_is_the_controller_built_package_and_loaded(client):
    # the lab's inventory selects nswap_kmod_install_method=package
    kernel = client.check_output("uname -r")
    package = client.package("nswap-modules-%s" % kernel)
    assert package.is_installed
    assert re.match(r"^0\.1\.0\+src[0-9a-f]{12}$", package.version), package.version
    assert client.check_output("modinfo -n nswap") == (
        "/lib/modules/%s/updates/nswap/nswap.ko" % kernel
    )
    assert client.check_output("dkms status -m nswap") == ""  # nothing built on the node
    assert client.file("/sys/module/nswap").is_directory
    assert client.file("/etc/modules-load.d/nswap.conf").contains("^nswap$")


def test_device_is_powered_and_every_server_is_up(client):
    assert client.file(CONFIG + "/power").content_string.strip() == "1"
    wanted = {"%s:7405" % nswap_address(name) for name in SERVERS}
    lines = []
    for _attempt in range(30):  # connections come up in the background
        lines = client.file(CONFIG + "/servers").content_string.split("\n")
        states = dict(line.split()[:2] for line in lines if line.strip())
        if set(states) == wanted and set(states.values()) == {"up"}:
            break
        time.sleep(2)
    assert set(states) == wanted and set(states.values()) == {"up"}, lines
    assert client.run("test -b /dev/nswap0").rc == 0


def test_nswap_is_swap_above_the_disk(client):
    settings = deploy_vars()
    active = swaps(client)
    disk = client.check_output("readlink -f %s" % settings["nswap_client_disk_swap"])
    assert active.get("/dev/nswap0") == int(settings["nswap_client_priority"])
    assert active.get(disk) == int(settings["nswap_client_disk_swap_priority"])
    assert active["/dev/nswap0"] > active[disk]


def test_boot_unit_recreates_the_device(client):
    unit = client.service("nswap-client")
    assert unit.is_enabled and unit.is_running
    conf = client.file("/etc/nswap/client.conf").content_string
    for name in SERVERS:
        assert "%s:7405" % nswap_address(name) in conf


@pytest.mark.parametrize("name", SERVERS)
def test_nswapd_runs_on_each_server(name):
    server = host(name)
    assert server.service("nswapd").is_running and server.service("nswapd").is_enabled
    assert server.socket("tcp://%s:7405" % nswap_address(name)).is_listening
    assert server.user("nswapd").exists
    # its nswap address only, not every address
    assert not server.socket("tcp://0.0.0.0:7405").is_listening
    assert (
        "listen = %s:7405" % nswap_address(name)
        in server.file("/etc/nswap/nswapd.conf").content_string
    )
    # The unit drops privileges: the running daemon is the nswapd user, not root.
    pid = server.check_output("systemctl show -p MainPID --value nswapd")
    assert server.check_output("ps -o user= -p %s" % pid) == "nswapd"
    assert server_status(name)["capacity_pages"] == 384 * 256
    # The unit's sandbox (its mount namespace) shows nswapd what the elastic cache reads
    # (ProcSubset=pid hid them) and keeps configfs writable for client_device.
    for path in ("/proc/meminfo", "/proc/pressure/memory"):
        assert server.run("nsenter -t %s -m test -r %s" % (pid, path)).rc == 0, path
    assert "rw" in server.check_output(
        "nsenter -t %s -m findmnt -n -o OPTIONS /sys/kernel/config" % pid
    ).split(",")


# --- the smoke playbook: facts and VM-to-VM TCP over the nswap addresses ---------------


def test_smoke_playbook_reaches_every_server_from_the_client():
    rc, out = installed_playbook("smoke", timeout=600)
    assert rc == 0, out[-4000:]
    for name in CLIENTS + SERVERS:
        assert "%s: Debian 12" % name in out, out[-4000:]
    for server in SERVERS:
        assert "%s-to-%s ok via %s:" % (CLIENTS[0], server, nswap_address(server)) in out, out[
            -4000:
        ]


# --- safe server changes ------------------------------------------------------------


def nswapd_pid(server):
    return server.check_output("systemctl show -p MainPID --value nswapd")


def test_cache_size_change_is_applied_at_run_time_without_restart():
    name = SERVERS[0]
    server = host(name)
    pid = nswapd_pid(server)
    arena = 384 * 256
    try:
        rc, out = playbook("-e", "nswap_server_cache_size=256M", "--limit", name)
        assert rc == 0, out[-4000:]
        assert recap(out)[name]["changed"] > 0
        status = server_status(name)
        assert (status["limit_pages"], status["capacity_pages"]) == (256 * 256, arena)
        assert nswapd_pid(server) == pid  # no restart
        assert server.file("/etc/nswap/nswapd.conf").contains("^cache_size = 256M$")
    finally:
        rc, out = playbook("--limit", name)  # back up to 384M, inside the arena
    assert rc == 0, out[-4000:]
    assert server_status(name)["limit_pages"] == arena
    assert nswapd_pid(server) == pid


def test_restart_of_a_page_holding_nswapd_is_refused_unless_allowed(client):
    """max_clients needs a restart.  With pages held, the deploy refuses it before writing
    anything; nswap_server_allow_restart_with_pages=true restarts anyway (and drops them).
    The pages are the test's own (put_pages); pages the lab client swapped out there before
    (a few, after the benchmark) are drained to the other server first (the client follows
    moves), so the restart costs no process its memory: the check that the server holds
    no page before the test's own says so."""
    name = SERVERS[0]
    server = host(name)
    held = 300
    if server_status(name)["used_pages"]:
        rc, out = nswap_server_module(name, "state=drained drain_timeout=120")
        assert rc == 0, out[-4000:]
        rc, out = nswap_server_module(name, "state=started cache_limit=384M")
        assert rc == 0, out[-4000:]
    before = server_status(name)["used_pages"]
    assert before == 0, "the lab client has pages on %s: a forced restart would drop them" % name
    assert put_pages(name, held) == 0
    assert server_status(name)["used_pages"] == held
    pid = nswapd_pid(server)
    conf = server.file("/etc/nswap/nswapd.conf").content_string
    # gossip is on in this scenario: without nswap_server_drain=false the role would drain
    # instead (which cannot move these pages: their owner does not follow moves)
    rc, out = playbook(
        "-e", "nswap_server_max_clients=128", "-e", "nswap_server_drain=false", "--limit", name
    )  # fmt: skip
    assert rc != 0
    text = " ".join(out.split())
    assert "Refusing to restart nswapd on %s" % name in text, out[-4000:]
    assert "Drain the server first" in text
    assert "nswap_server_allow_restart_with_pages=true" in text
    assert "Nothing was changed" in text
    assert recap(out)[name]["changed"] == 0
    assert nswapd_pid(server) == pid
    assert server.file("/etc/nswap/nswapd.conf").content_string == conf
    assert server_status(name)["used_pages"] == held  # the pages are still there
    try:
        rc, out = playbook(
            "-e", "nswap_server_max_clients=128",
            "-e", "nswap_server_allow_restart_with_pages=true",
            "--limit", name,
        )  # fmt: skip
        assert rc == 0, out[-4000:]
        assert nswapd_pid(server) != pid  # restarted
        assert server.file("/etc/nswap/nswapd.conf").contains("^max_clients = 128$")
        assert server_status(name)["used_pages"] == 0  # what the flag says it costs
    finally:
        # back to the scenario's settings: nothing held now, so no flag is needed
        rc, out = playbook("--limit", name)
    assert rc == 0, out[-4000:]
    assert server.file("/etc/nswap/nswapd.conf").contains("^max_clients = 256$")
    assert server.service("nswapd").is_running


# --- nswap_gossip: nswapd on every node, the client's feeding its device -------------


def gossip_table(name):
    """NAME's gossip table file as a dict ({"members": []} before the first round)."""
    table_file = host(name).file("/run/nswap/gossip.json")
    return json.loads(table_file.content_string) if table_file.exists else {"members": []}


def servers_lines(client):
    return client.file(CONFIG + "/servers").content_string.splitlines()


def test_every_node_runs_nswapd_and_the_client_feeds_its_device(client):
    """The scenario deploys with nswap_gossip=true: nswapd runs on the client too, lending
    nothing; every node's table lists every other node alive, the client with no room;
    the client's nswapd writes the room of each server into its device's servers file as
    a hint (the one file of the device its group may write), and the boot script makes
    that file the group's again."""
    assert deploy_vars()["nswap_gossip"] == "true"
    name = CLIENTS[0]
    everyone = {nswap_address(n) for n in CLIENTS + SERVERS}
    assert client.service("nswapd").is_running and client.service("nswapd").is_enabled
    status = server_status(name)
    assert (status["capacity_pages"], status["limit_pages"]) == (0, 0)
    assert client.file("/etc/nswap/nswapd.conf").contains("^client_device = nswap0$")
    seen, lines = {}, []
    for _attempt in range(30):  # a gossip round is a second
        seen = {
            n: {m["address"]: (m["state"], m["capacity"]) for m in gossip_table(n)["members"]}
            for n in CLIENTS + SERVERS
        }
        lines = servers_lines(client)
        if (
            all(
                set(members) == everyone - {nswap_address(n)}
                and all(state == "alive" for state, _ in members.values())
                for n, members in seen.items()
            )
            and len(lines) == len(SERVERS)
            and all(" hint=" in line for line in lines)
        ):
            break
        time.sleep(2)
    for n in SERVERS:
        assert seen[n][nswap_address(name)] == ("alive", 0), seen  # the client lends nothing
        assert seen[name][nswap_address(n)] == ("alive", 384 * 256), seen
    assert set(seen[name]) == everyone - {nswap_address(name)}, seen
    # the servers of the scenario only (the client has no room), each with its room
    assert sorted(line.split()[0] for line in lines) == sorted(
        "%s:7405" % nswap_address(n) for n in SERVERS
    ), lines
    assert all(re.search(r" hint=\d+/%d\b" % (384 * 256), line) for line in lines), lines
    access = "stat -c '%%G %%a' %s/servers" % CONFIG
    assert client.check_output(access) == "nswapd 664"
    assert client.check_output("stat -c '%%G %%a' %s/size" % CONFIG) == "root 644"
    # what nswap-client.service does at boot, on a device that is up already
    try:
        client.check_output("chgrp root %s/servers && chmod 0644 %s/servers" % (CONFIG, CONFIG))
        client.check_output("/usr/local/sbin/nswap-client up")
        assert client.check_output(access) == "nswapd 664"
    finally:
        client.run("chgrp nswapd %s/servers && chmod 0664 %s/servers" % (CONFIG, CONFIG))


# --- pages reach the servers ---------------------------------------------------------


def test_pages_reach_the_servers_under_memory_pressure(client):
    puts_before = int(client.file(COUNTERS + "/puts").content_string)
    used_before = sum(server_status(name)["used_pages"] for name in SERVERS)
    client.check_output(
        "systemd-run --unit=%s --property=RuntimeMaxSec=900 python3 -c %s"
        % (HOG_UNIT, shlex.quote(HOG))
    )
    try:
        puts = puts_before
        for _attempt in range(120):  # at most ~10 minutes under TCG
            puts = int(client.file(COUNTERS + "/puts").content_string)
            if puts - puts_before > PAGES_OUT:
                break
            assert client.service(HOG_UNIT).is_running, client.run(
                "journalctl -u %s -n 20" % HOG_UNIT
            ).stdout
            time.sleep(5)
        used_during = sum(server_status(name)["used_pages"] for name in SERVERS)
        errors = int(client.file(COUNTERS + "/errors").content_string)
    finally:
        client.run("systemctl stop %s; systemctl reset-failed %s" % (HOG_UNIT, HOG_UNIT))
    assert puts - puts_before > PAGES_OUT, (puts_before, puts)
    assert used_during - used_before > PAGES_OUT // 2, (used_before, used_during)
    assert errors == 0


# --- the deploy playbook against the converged lab ---------------------------------


def changed_tasks(output, host_name):
    """Names of the tasks that reported a change on host_name, in order."""
    names, task = [], None
    for line in output.splitlines():
        match = re.match(r"^TASK \[(.*)\]", line)
        if match:
            task = match.group(1)
        elif re.match(r"^changed: \[%s\]" % re.escape(host_name), line):
            names.append(task)
    return names


def min_free_kbytes(client):
    return int(client.file("/proc/sys/vm/min_free_kbytes").content_string)


def test_free_memory_floor_is_raised_by_deploy_and_boot_script_never_lowered(client):
    """nswap_client_min_free_kbytes (default 16384): a node below it is raised by a deploy
    (one changed task) and by the boot script; the boot script never lowers a higher value."""
    floor = int(deploy_vars().get("nswap_client_min_free_kbytes", 16384))
    original = min_free_kbytes(client)
    assert original >= floor
    assert client.file("/etc/nswap/client.conf").contains("^NSWAP_MIN_FREE_KBYTES=%d$" % floor)
    try:
        client.check_output("sysctl -q -w vm.min_free_kbytes=%d" % (floor // 2))
        rc, out = playbook("--limit", "nswap_clients")
        assert rc == 0, out[-4000:]
        tasks = [name.split(" : ")[-1] for name in changed_tasks(out, CLIENTS[0])]
        assert tasks == ["Keep free memory for the network's receive buffers"], tasks
        assert min_free_kbytes(client) == floor
        # what nswap-client.service runs at boot (safe to run again: the device is up)
        client.check_output("sysctl -q -w vm.min_free_kbytes=%d" % (floor // 2))
        client.check_output("/usr/local/sbin/nswap-client up")
        assert min_free_kbytes(client) == floor
        client.check_output("sysctl -q -w vm.min_free_kbytes=%d" % (floor * 2))
        client.check_output("/usr/local/sbin/nswap-client up")
        assert min_free_kbytes(client) == floor * 2
    finally:
        client.run("sysctl -q -w vm.min_free_kbytes=%d" % original)


def test_check_diff_shows_exactly_a_priority_change_and_makes_none(client):
    before = swaps(client)
    conf_before = client.file("/etc/nswap/client.conf").content_string
    rc, out = playbook(
        "--check", "--diff", "-e", "nswap_client_priority=90", "--limit", "nswap_clients"
    )
    assert rc == 0, out[-4000:]
    tasks = changed_tasks(out, CLIENTS[0])
    assert [name.split(" : ")[-1] for name in tasks] == [
        "Swap on the nswap device",
        "Write the device's settings for the boot unit",
    ], (tasks, out[-4000:])
    assert re.search(r"^-\s*\"?priority\"?: 100", out, re.M), out[-4000:]
    assert re.search(r"^\+\s*\"?priority\"?: 90", out, re.M), out[-4000:]
    assert re.search(r"^\+NSWAP_PRIORITY=90$", out, re.M), out[-4000:]
    assert swaps(client) == before
    assert client.file("/etc/nswap/client.conf").content_string == conf_before


def test_bad_priority_fails_with_the_fix_and_changes_nothing(client):
    before = swaps(client)
    rc, out = playbook("-e", "nswap_client_priority=40000", "--limit", "nswap_clients")
    assert rc != 0
    assert "nswap_client_priority=40000" in out
    assert "must be integers from 0 to 32767" in " ".join(out.split())
    assert recap(out)[CLIENTS[0]]["changed"] == 0
    assert swaps(client) == before


def test_unknown_server_fails_with_the_fix_and_changes_nothing(client):
    before = swaps(client)
    conf_before = client.file("/etc/nswap/client.conf").content_string
    rc, out = playbook(
        "-e", '{"nswap_client_servers": ["%s", "nosuchnode"]}' % SERVERS[0],
        "--limit", "nswap_clients",
    )  # fmt: skip
    assert rc != 0
    text = " ".join(out.split())
    assert "Unknown memory server(s) nosuchnode" in text, out[-4000:]
    assert "10.0.0.2:7405" in text  # the form to use
    assert recap(out)[CLIENTS[0]]["changed"] == 0
    assert swaps(client) == before
    assert client.file("/etc/nswap/client.conf").content_string == conf_before


def test_missing_kernel_headers_fail_with_the_fix_and_change_nothing(client):
    # a switch to the per-node DKMS build that cannot build keeps the installed package
    kernel = client.check_output("uname -r")
    build = "/lib/modules/%s/build" % kernel
    hidden = build + ".nswap-verify"
    client.check_output("mv %s %s" % (build, hidden))
    try:
        rc, out = playbook(
            "-e",
            "nswap_kmod_install_method=dkms",
            "-e",
            "nswap_kmod_install_headers=false",
            "--limit",
            "nswap_clients",
        )
    finally:
        client.check_output("mv %s %s" % (hidden, build))
    assert rc != 0
    text = " ".join(out.split())
    assert "The headers of the running kernel are missing" in text, out[-4000:]
    assert "install linux-headers-" in text
    assert recap(out)[CLIENTS[0]]["changed"] == 0
    assert client.file("/sys/module/nswap").is_directory
    assert client.package("nswap-modules-%s" % kernel).is_installed


# --- a rolling re-deploy under a running workload (last of all) ---------------------------

FILLER = os.path.join(REPO, "harness", "swapfill.py")
GUEST_FILLER = "/root/nswap_verify_swapfill.py"
FILL_UNIT = "nswap-verify-fill"
FILL_READY = "/run/nswap-verify-fill.ready"
FILL_GO = "/run/nswap-verify-fill.go"
FILL_RESULT = "/run/nswap-verify-fill.result"
# The workload's memory cgroup is held to FILL_MEMORY_HIGH (systemd's MemoryHigh): reclaim
# pushes its pages out to nswap0 once it holds more, so FILL_KIB go out after about
# FILL_MEMORY_HIGH + FILL_KIB allocated, instead of after the whole node's RAM (1 GiB: a
# 64 MiB fill of the node took 772 MiB to check and 33,450 pages to drain, 209 s of the
# run's drains).  Drains move about 250 pages/s under TCG, so the pages out set their cost.
FILL_KIB = 16 * 1024
FILL_MEMORY_HIGH = "32M"


def wait_for_file(node, path, what, attempts=120):
    """The content of PATH on NODE once it exists (5 s between looks), while FILL_UNIT runs."""
    for _attempt in range(attempts):
        running = node.service(FILL_UNIT).is_running
        if node.file(path).exists:  # after the look at the unit: it ends once it checked
            return node.file(path).content_string
        assert running, node.run("journalctl -u %s -n 20" % FILL_UNIT).stdout
        time.sleep(5)
    raise AssertionError("%s: not in %d s" % (what, attempts * 5))


def drained(output):
    """Servers the deploy drained before their restart (the drain reported a change)."""
    return [
        name
        for name in SERVERS
        if any(t.endswith("Drain nswapd before the restart") for t in changed_tasks(output, name))
    ]


@pytest.mark.after_benchmark
def test_a_rolling_re_deploy_under_a_workload_loses_no_byte(client):
    """The deploy of the servers restarts each nswapd (a new log level) one at a time
    (nswap_deploy_server_batch=1) while a workload holds 16 MiB of its memory out on
    them (FILL_KIB, FILL_MEMORY_HIGH), each page with its own pattern: each server holds
    pages of it when its turn comes and is drained first, its pages move to the other
    one and the client follows (nswap_client_migration); then every byte is checked.
    About 3 minutes under TCG; it runs after the benchmark (conftest.py), which it
    would otherwise leave at log level debug."""
    client.ansible("copy", "src=%s dest=%s mode=0644" % (FILLER, GUEST_FILLER), check=False)
    client.run("rm -f %s %s %s" % (FILL_READY, FILL_GO, FILL_RESULT))
    pids = {name: nswapd_pid(host(name)) for name in SERVERS}
    before = {name: server_status(name)["used_pages"] for name in SERVERS}
    client.check_output(
        "systemd-run --unit=%s --property=RuntimeMaxSec=3600 --property=MemoryHigh=%s "
        "python3 %s --device nswap0 --swapped-kib %d --ready %s --verify-on %s --result %s "
        "--hold-s 3000"
        % (FILL_UNIT, FILL_MEMORY_HIGH, GUEST_FILLER, FILL_KIB, FILL_READY, FILL_GO,
           FILL_RESULT)
    )  # fmt: skip
    try:
        ready = wait_for_file(client, FILL_READY, "the workload's %d KiB out" % FILL_KIB)
        assert ready.startswith("done "), ready
        # done: nswap0's swap in use grew by FILL_KIB at least, each of those pages written
        # to a server; each server got some of them (placement spreads the writes).  Swap
        # counts a slot as used when it is allocated, before its write ends: the last
        # writes may still be on their way (a cold run saw 4,007 of 4,096 held at "done").
        for _attempt in range(30):
            held = {name: server_status(name)["used_pages"] for name in SERVERS}
            if sum(held.values()) >= FILL_KIB // 4:
                break
            time.sleep(2)
        assert sum(held.values()) >= FILL_KIB // 4, (before, held)
        assert all(held[name] > before[name] for name in SERVERS), (before, held)
        rc, out = playbook(
            "-e", "nswap_deploy_server_batch=1", "-e", "nswap_server_log_level=debug",
            "--limit", "nswap_servers", timeout=2400,
        )  # fmt: skip
        assert rc == 0, out[-4000:]
        for name in SERVERS:
            assert nswapd_pid(host(name)) != pids[name]  # restarted
            assert host(name).file("/etc/nswap/nswapd.conf").contains("^log_level = debug$")
        # both held pages when their turn came: the first the workload's, the second
        # those and the first one's, moved there
        assert drained(out) == SERVERS, out[-4000:]
        client.check_output("touch %s" % FILL_GO)
        result = wait_for_file(client, FILL_RESULT, "the workload's check", attempts=60)
        assert result.endswith(" pages checked, 0 differ []"), result
        assert int(client.file(COUNTERS + "/errors").content_string) == 0
    finally:
        client.run("systemctl stop %s; systemctl reset-failed %s" % (FILL_UNIT, FILL_UNIT))
        client.run("rm -f %s %s %s %s" % (FILL_READY, FILL_GO, FILL_RESULT, GUEST_FILLER))
