"""Verify the vagrant scenario: one node that is nswap server and client at once.

Runs on the controller (molecule verify, testinfra over molecule's inventory).  The
same properties as the default scenario checks on the lab: module loaded, device
present and connected, swap active at the configured priority, nswapd running, and
pages really reaching nswapd under memory pressure.  Every wait is bounded.
"""

import json
import os
import shlex
import time

import pytest
import testinfra.utils.ansible_runner

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("nswap_clients")

REPO = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
PROTOCOL = os.path.join(REPO, "plugins", "module_utils", "nswap_protocol.py")
GUEST_PROTOCOL = "/root/nswap_verify_protocol.py"
DEVICE = "nswap0"
CONFIG = "/sys/kernel/config/nswap/" + DEVICE
COUNTERS = "/sys/block/%s/nswap" % DEVICE
HOG_UNIT = "nswap-verify-hog"
HOG_DONE = "/run/nswap-verify-hog.done"
# Allocates MemAvailable + 96 MiB (about 24000 pages more than fit; less than the
# 256 MiB cache), touches every page, says so, then holds the memory.
HOG = (
    "import time\n"
    "info = dict(l.split(':') for l in open('/proc/meminfo'))\n"
    "n = (int(info['MemAvailable'].split()[0]) + 96 * 1024) * 1024\n"
    "b = bytearray(n)\n"
    "for i in range(0, n, 4096): b[i] = 1\n"
    "open('%s', 'w').write('done'); time.sleep(600)\n" % HOG_DONE
)


def variables(host):
    return RUNNER.get_variables(host.backend.get_hostname())


def server_status(host):
    """nswapd's STATUS counters, asked on the node itself (nswapd listens on loopback)."""
    code = (
        "import json, sys; sys.path.insert(0, '/root'); import nswap_verify_protocol as p; "
        "print(json.dumps(p.Client(%r, 7405, timeout=10).status()._asdict()))"
        % variables(host)["nswap_address"]
    )
    return json.loads(host.check_output("python3 -c %s" % shlex.quote(code)))


@pytest.fixture(scope="module", autouse=True)
def protocol_on_node(host):
    host.ansible("copy", "src=%s dest=%s mode=0644" % (PROTOCOL, GUEST_PROTOCOL), check=False)
    yield
    host.run("rm -f %s" % GUEST_PROTOCOL)


def test_module_is_built_by_dkms_and_loaded(host):
    assert host.file("/sys/module/nswap").is_directory
    assert "installed" in host.check_output("dkms status -m nswap")


def test_device_is_powered_and_connected_over_loopback(host):
    wanted = "%s:7405" % variables(host)["nswap_address"]
    states = {}
    for _attempt in range(30):  # connections come up in the background
        lines = host.file(CONFIG + "/servers").content_string.splitlines()
        states = dict(line.split()[:2] for line in lines if line.strip())
        if states == {wanted: "up"}:
            break
        time.sleep(2)
    assert states == {wanted: "up"}
    assert host.file(CONFIG + "/power").content_string.strip() == "1"
    assert host.run("test -b /dev/%s" % DEVICE).rc == 0  # testinfra's File has no is_block_device


def test_nswap_is_active_swap_at_the_configured_priority(host):
    lines = host.file("/proc/swaps").content_string.splitlines()[1:]
    active = {fields[0]: int(fields[4]) for fields in (line.split() for line in lines)}
    assert active.get("/dev/" + DEVICE) == int(variables(host)["nswap_client_priority"])


def test_nswapd_runs_with_the_configured_cache(host):
    assert host.service("nswapd").is_running and host.service("nswapd").is_enabled
    assert host.socket("tcp://%s:7405" % variables(host)["nswap_address"]).is_listening
    assert server_status(host)["capacity_pages"] == 256 * 256  # 256 MiB of 4 KiB pages


def test_pages_reach_nswapd_under_memory_pressure(host):
    puts_before = int(host.file(COUNTERS + "/puts").content_string)
    used_before = server_status(host)["used_pages"]
    host.run("rm -f %s" % HOG_DONE)
    host.check_output(
        "systemd-run --unit=%s --property=RuntimeMaxSec=900 python3 -c %s"
        % (HOG_UNIT, shlex.quote(HOG))
    )
    try:
        for _attempt in range(120):  # at most ~10 minutes under TCG
            if host.file(HOG_DONE).exists:
                break
            assert host.service(HOG_UNIT).is_running, host.run(
                "journalctl -u %s -n 20" % HOG_UNIT
            ).stdout
            time.sleep(5)
        assert host.file(HOG_DONE).exists, "the allocator did not finish in 10 minutes"
        puts_after = int(host.file(COUNTERS + "/puts").content_string)
        used_during = server_status(host)["used_pages"]
        errors = int(host.file(COUNTERS + "/errors").content_string)
    finally:
        host.run("systemctl stop %s; rm -f %s" % (HOG_UNIT, HOG_DONE))
    assert puts_after - puts_before > 10000, (puts_before, puts_after)
    assert used_during - used_before > 10000, (used_before, used_during)
    assert errors == 0
