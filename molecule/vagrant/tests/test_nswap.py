"""Verify the vagrant scenario: client1 swaps over the network into nswapd on server1.

Runs on the controller (molecule verify, testinfra over molecule's inventory).  The
same properties as the default scenario checks on the lab: module loaded, device
present and connected, swap active at the configured priority, nswapd running, and
pages really reaching nswapd under memory pressure; then the client reboots and swap
over nswap must be back (module, device, swapon at boot), and a teardown that can swap
off removes nswap from both nodes.  Every wait is bounded.
"""

import json
import os
import shlex
import subprocess
import sys
import time

import pytest
import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = RUNNER.get_hosts("nswap_clients")
SERVER = RUNNER.get_hosts("nswap_servers")[0]

REPO = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
PROTOCOL = os.path.join(REPO, "plugins", "module_utils", "nswap_protocol.py")
GUEST_PROTOCOL = "/root/nswap_verify_protocol.py"
DEVICE = "nswap0"
CONFIG = "/sys/kernel/config/nswap/" + DEVICE
COUNTERS = "/sys/block/%s/nswap" % DEVICE
HOG_UNIT = "nswap-verify-hog"
HOG_DONE = "/run/nswap-verify-hog.done"
FILLER = os.path.join(REPO, "harness", "swapfill.py")
GUEST_FILLER = "/root/nswap_verify_swapfill.py"
# Fills memory until the kernel has put 112 MiB more on the device (harness/swapfill.py:
# measured on the node, at most MemTotal + 256 MiB, less than the 384 MiB device on top
# of RAM), says so in HOG_DONE, then holds it.
HOG = "python3 %s --device %s --swapped-kib %d --ready %s" % (
    GUEST_FILLER,
    DEVICE,
    112 * 1024,
    HOG_DONE,
)


def variables(name):
    return RUNNER.get_variables(name)


def server_address():
    return variables(SERVER)["ansible_host"]


def server_status(host):
    """server1's nswapd STATUS counters, asked from the client over the network."""
    code = (
        "import json, sys; sys.path.insert(0, '/root'); import nswap_verify_protocol as p; "
        "print(json.dumps(p.Client(%r, 7405, timeout=10).status()._asdict()))" % server_address()
    )
    return json.loads(host.check_output("python3 -c %s" % shlex.quote(code)))


def teardown():
    """playbooks/teardown.yml against this scenario's nodes: (rc, output)."""
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")]
    argv += ["-i", INVENTORY, os.path.join(REPO, "playbooks", "teardown.yml")]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(REPO, "build", "collections")
    proc = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def server_host():
    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (SERVER, INVENTORY))


def parse_swaps(text):
    """{path: priority} from /proc/swaps's text."""
    lines = text.splitlines()[1:]
    return {fields[0]: int(fields[4]) for fields in (line.split() for line in lines)}


def swaps(host):
    """{path: priority} of the node's active swap areas."""
    return parse_swaps(host.file("/proc/swaps").content_string)


@pytest.fixture(scope="module", autouse=True)
def protocol_on_node(host):
    for src, dest in ((PROTOCOL, GUEST_PROTOCOL), (FILLER, GUEST_FILLER)):
        host.ansible("copy", "src=%s dest=%s mode=0644" % (src, dest), check=False)
    yield
    host.run("rm -f %s %s" % (GUEST_PROTOCOL, GUEST_FILLER))


def test_module_is_built_by_dkms_and_loaded(host):
    assert host.file("/sys/module/nswap").is_directory
    assert "installed" in host.check_output("dkms status -m nswap")


def test_device_is_powered_and_connected_to_the_server(host):
    wanted = "%s:7405" % server_address()
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
    wanted = int(variables(host.backend.get_hostname())["nswap_client_priority"])
    assert swaps(host).get("/dev/" + DEVICE) == wanted


def test_nswapd_runs_on_the_server_with_the_configured_cache(host):
    server = server_host()
    assert server.service("nswapd").is_running and server.service("nswapd").is_enabled
    # only on its nswap address (nswap_address: ansible_host here), not on every address
    assert server.socket("tcp://%s:7405" % server_address()).is_listening
    assert not server.socket("tcp://0.0.0.0:7405").is_listening
    assert server.user("nswapd").exists
    assert server_status(host)["capacity_pages"] == 384 * 256  # 384 MiB of 4 KiB pages


def test_pages_reach_nswapd_and_a_teardown_that_cannot_swap_off_keeps_all(host):
    """The allocator pushes ~100 MiB out to server1; while it holds that memory there is
    neither RAM nor other swap for those pages, so teardown must refuse and keep the
    device, the module and the server."""
    puts_before = int(host.file(COUNTERS + "/puts").content_string)
    used_before = server_status(host)["used_pages"]
    host.run("rm -f %s" % HOG_DONE)
    host.check_output("systemd-run --unit=%s --property=RuntimeMaxSec=900 %s" % (HOG_UNIT, HOG))
    try:
        for _attempt in range(120):  # at most ~10 minutes under TCG
            if host.file(HOG_DONE).exists:
                break
            assert host.service(HOG_UNIT).is_running, host.run(
                "journalctl -u %s -n 20" % HOG_UNIT
            ).stdout
            time.sleep(5)
        assert host.file(HOG_DONE).exists, "the allocator did not finish in 10 minutes"
        hog_said = host.file(HOG_DONE).content_string
        assert hog_said.startswith("done "), hog_said
        puts_after = int(host.file(COUNTERS + "/puts").content_string)
        used_during = server_status(host)["used_pages"]
        errors = int(host.file(COUNTERS + "/errors").content_string)
        swaps_during = swaps(host)
        rc, out = teardown()
        swaps_after = swaps(host)
        server_after = server_status(host)
    finally:
        host.run("systemctl stop %s; rm -f %s" % (HOG_UNIT, HOG_DONE))
    assert puts_after - puts_before > 10000, (puts_before, puts_after)
    assert used_during - used_before > 10000, (used_before, used_during)
    assert errors == 0
    # The refusal names the reason and the fix, and nothing was removed anywhere.
    assert rc != 0, out[-4000:]
    text = " ".join(out.split())
    assert "swapoff /dev/%s would need" % DEVICE in text, out[-4000:]
    assert "free memory or add swap first" in text, out[-4000:]
    assert swaps_after == swaps_during
    assert host.file("/sys/module/nswap").is_directory
    assert server_after["used_pages"] >= used_during


def node_output(name, command, timeout_s=60):
    """stdout of @command on node @name over a new SSH connection of its own (no
    connection master), or None when it fails or has not ended in @timeout_s: testinfra
    waits on ssh without a bound, and a rebooting node may accept a connection it never
    serves."""
    hostvars = variables(name)
    argv = ["ssh", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "BatchMode=yes"]
    argv += ["-o", "ConnectTimeout=10"] + shlex.split(hostvars.get("ansible_ssh_common_args", ""))
    argv += ["-p", str(hostvars.get("ansible_port", 22)), "-l", hostvars["ansible_user"]]
    argv += ["-i", hostvars["ansible_private_key_file"], hostvars["ansible_host"], command]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return None
    return proc.stdout if proc.returncode == 0 else None


def test_swap_over_nswap_comes_back_after_a_reboot(host):
    """Module at boot (modules-load.d), device and swapon (nswap-client.service)."""
    name = host.backend.get_hostname()
    wanted = swaps(host)
    assert "/dev/" + DEVICE in wanted
    boot_id = host.file("/proc/sys/kernel/random/boot_id").content_string.strip()
    host.run("systemd-run --on-active=2 systemctl reboot")
    deadline = time.time() + 600  # a TCG boot takes about a minute
    after = None
    while time.time() < deadline:
        time.sleep(10)
        out = node_output(name, "cat /proc/sys/kernel/random/boot_id /proc/swaps")
        if out is None or out.split("\n", 1)[0] == boot_id:
            continue  # down, not up yet, or not rebooted yet
        after = parse_swaps(out.split("\n", 1)[1])  # after the boot id
        if "/dev/" + DEVICE in after:
            break
    assert after == wanted, (wanted, after)
    assert node_output(name, "systemctl is-active nswap-client") == "active\n"
    # the unit raised the free-memory floor (nswap_client_min_free_kbytes, 16384) again
    assert int(node_output(name, "cat /proc/sys/vm/min_free_kbytes") or 0) >= 16384


def test_teardown_after_a_possible_swapoff_removes_everything(host):
    """With the allocator gone the pages fit in RAM again: teardown swaps off, then removes
    the device, the module (and its DKMS copy) and the server, on every node."""
    assert "/dev/" + DEVICE in swaps(host)
    rc, out = teardown()
    assert rc == 0, out[-4000:]
    assert "/dev/" + DEVICE not in swaps(host)
    assert host.run("test -e /dev/%s" % DEVICE).rc != 0
    assert not host.file("/sys/module/nswap").exists
    assert host.check_output("dkms status -m nswap") == ""
    assert not host.file("/etc/modules-load.d/nswap.conf").exists
    server = server_host()
    assert not server.service("nswapd").is_running
    assert not server.file("/etc/systemd/system/nswapd.service").exists
    assert not server.file("/usr/local/sbin/nswapd").exists
