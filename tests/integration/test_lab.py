"""The VM lab's own life cycle: bad input, a run killed while its VM boots and the next
run that recovers from it, idempotence, --check, facts, and removal that leaves nothing
behind.

One VM (a client, no server), its own lab name (a developer's `default` lab is left
alone): about two minutes of TCG.  What needs several VMs and a deploy (VM-to-VM TCP
with playbooks/smoke.yml, swapping, the benchmark) runs on molecule default's lab, the
test run's one deployed lab (molecule/default/tests).
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils.lab import net, vm

pytestmark = pytest.mark.lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
LAB = "ci"
LAB_DIR = os.path.expanduser("~/.cache/nswap/labs/%s" % LAB)
INVENTORY = os.path.join(LAB_DIR, "inventory.yml")
# One VM: every code path of the lab role (image, overlay, netns, QEMU, wait, inventory)
# at a quarter of the emulated CPU of the default four VMs.
BASE_ARGS = ["-e", "lab_name=%s" % LAB, "-e", "lab_servers=0"]


def env_with_path(path=None):
    env = dict(
        os.environ, ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1", ANSIBLE_DEPRECATION_WARNINGS="0"
    )
    env["PATH"] = path or "%s:%s" % (VENV_BIN, os.environ["PATH"])
    return env


def playbook(*args, timeout=1800, path=None):
    argv = [os.path.join(VENV_BIN, "ansible-playbook")] + list(args)
    proc = subprocess.run(
        argv,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env_with_path(path),
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def lab(*extra, **kwargs):
    return playbook("playbooks/lab.yml", *BASE_ARGS, *extra, **kwargs)


def recap(output):
    """{host: {ok:.., changed:.., failed:..}} from the PLAY RECAP."""
    hosts = {}
    for line in output.split("PLAY RECAP", 1)[-1].splitlines():
        m = re.match(r"^(\S+)\s+:\s+(.*)$", line.strip())
        if m:
            hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return hosts


def leftovers():
    """Everything the lab could leave behind, by kind."""
    found = {}
    pids = vm.lab_processes(LAB)
    if pids:
        found["qemu"] = pids
    if net.netns_exists("nswap-lab-%s" % LAB):
        found["netns"] = "nswap-lab-%s" % LAB
    if os.path.exists(LAB_DIR):
        found["files"] = sorted(os.listdir(LAB_DIR))
    masters = subprocess.run(
        ["pgrep", "-f", "ControlPath=%s/" % LAB_DIR], capture_output=True, text=True, check=False
    ).stdout.split()
    if masters:
        found["ssh"] = masters
    return found


@pytest.fixture(scope="module", autouse=True)
def clean_lab():
    lab("-e", "lab_state=absent")
    yield
    lab("-e", "lab_state=absent")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["-e", "lab_state=bogus"],
            "value of lab_state must be one of: present, absent, got: bogus",
        ),
        (["-e", "lab_clients=0", "-e", "lab_servers=0"], "the lab needs at least one VM"),
        (["-e", "lab_memory_mib=128"], "lab_memory_mib >= 256"),
    ],
)
def test_bad_input_fails_with_the_fix(extra, message):
    rc, out = lab(*extra, timeout=120)
    assert rc != 0
    assert message in " ".join(out.split()), out[-2000:]
    assert leftovers() == {}


def test_missing_qemu_names_the_package(tmp_path):
    # A PATH with every command of /usr/bin except QEMU.
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for name in os.listdir("/usr/bin"):
        if not name.startswith("qemu-system"):
            os.symlink(os.path.join("/usr/bin", name), shadow / name)
    rc, out = lab(timeout=120, path="%s:%s:/usr/sbin" % (VENV_BIN, shadow))
    assert rc != 0
    assert "qemu-system-x86_64 not found on the controller" in out
    assert "apt-get install -y qemu-system-x86" in out
    assert leftovers() == {}


def kill_a_run_part_way():
    """Start a lab run, SIGKILL its whole process group once its VM has started, and
    return the QEMU processes it left behind."""
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/lab.yml"] + BASE_ARGS
    killed = subprocess.Popen(
        argv,
        cwd=REPO,
        env=env_with_path(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not vm.lab_processes(LAB) and time.time() < deadline and killed.poll() is None:
        time.sleep(0.5)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    return vm.lab_processes(LAB)


@pytest.fixture(scope="module")
def recovered_lab():
    """A run killed while its VM boots, then the run that must recover from it: the lab
    every test below uses."""
    left = kill_a_run_part_way()
    assert left, "the killed run should have left its VM behind"
    rc, out = lab()
    assert rc == 0, out[-4000:]
    return out


def test_killed_run_is_recovered_and_writes_the_inventory(recovered_lab):
    hosts = recap(recovered_lab)
    assert set(hosts) == {"localhost", "client1"}
    assert all(counts["failed"] == 0 for counts in hosts.values()), hosts
    with open(INVENTORY) as handle:
        text = handle.read()
    assert "nswap_clients:" in text and "nswap_servers:" in text
    assert "nswap_address: 10.77.0.11" in text
    assert len(vm.lab_processes(LAB)) == 1  # the killed run's VM was replaced, not doubled


def test_second_present_changes_nothing(recovered_lab):
    rc, out = lab()
    assert rc == 0, out[-4000:]
    changed = {host: counts["changed"] for host, counts in recap(out).items()}
    assert set(changed.values()) == {0}, changed


def test_check_mode_on_a_running_lab_changes_nothing(recovered_lab):
    rc, out = lab("--check")
    assert rc == 0, out[-4000:]
    assert recap(out)["localhost"]["changed"] == 0


def ansible_on(host, *args):
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "ansible"), "-i", INVENTORY, host, "-o", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env_with_path(),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc.stdout


def test_facts_from_the_vm(recovered_lab):
    stdout = ansible_on("all", "-m", "setup", "-a", "filter=ansible_distribution*")
    facts = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\S+) \| SUCCESS => (\{.*\})$", line)
        if m:
            facts[m.group(1)] = json.loads(m.group(2))["ansible_facts"]
    assert sorted(facts) == ["client1"], stdout[-3000:]
    for host_facts in facts.values():
        assert host_facts["ansible_distribution"] == "Debian"
        assert host_facts["ansible_distribution_major_version"] == "12"


def test_absent_leaves_nothing(recovered_lab):
    # the last test of the module: it removes the lab the others use
    rc, out = lab("-e", "lab_state=absent")
    assert rc == 0, out[-3000:]
    assert leftovers() == {}
