"""The molecule `vagrant` scenario end to end: a box built from the lab image, two
vagrant-libvirt VMs (TCG, server1 and client1) converged with playbooks/deploy.yml,
verified (molecule/vagrant/tests: swap into the server, a refused teardown, a reboot,
a teardown that succeeds), destroyed, and the host put back exactly as it was (no
domain, network, pool, route guard, libvirtd, iptables chains or SSH master left;
/dev/kvm mode as before).  First, a session killed together with its libvirtd is undone
by the next one, which then works (no VMs: seconds).

Two VM boots and one client reboot; the DKMS build under TCG dominates.
"""

import contextlib
import grp
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils.lab import image

from harness import molecule, vagrantbox, vagranthost

pytestmark = [pytest.mark.vm, pytest.mark.e2e]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
MOLECULE_TIMEOUT_S = 2700
MOLECULE_LOG = "/tmp/nswap-molecule-vagrant.log"


def host_state():
    """What the session changes and must put back."""
    return {
        "kvm": vagranthost.kvm_state(),
        "libvirtd_answers": vagranthost.libvirtd_answers(),
        "libvirt_chains": vagranthost.libvirt_chains_exist(),
        "route_guard": vagranthost.route_guard_present(),
    }


def vm_qemu_processes():
    """QEMU processes of this scenario's domains (libvirt passes -name guest=<domain>)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    cmdline = handle.read()
            except OSError:
                continue
            if b"guest=" + vagranthost.PREFIX.encode() in cmdline:
                pids.append(int(entry))
    return pids


def failure_report(out):
    """What a failed run shows first (CI keeps only the start and the end of a message):
    how verify went, then the end of each VM's console -- kernel and systemd messages,
    also of a shutdown or boot that hung -- then the end of molecule's output."""
    start = out.find("[vagrant > verify] Executing")
    verify = out[start:] if start >= 0 else "(verify did not start)"
    parts = ["== molecule verify\n" + verify[-3000:]]
    for name, tail in vagranthost.console_tails(30).items():
        parts.append("== console of %s\n%s" % (name, tail))
    parts.append("== end of molecule's output\n" + out[-2500:])
    return "\n".join(parts)


@pytest.fixture(scope="module")
def root():
    """Root, and a host without what a killed earlier test run left (its libvirtd, VMs,
    pool, route guard...: vagranthost.restore, what every session does first), so that
    the tests compare the host before and after their own sessions only."""
    if os.geteuid() != 0:
        pytest.skip("needs root (libvirt system instance, routes, /dev/kvm)")
    with vagranthost.session_lock(vagrantbox.DEFAULT_DATA_DIR):
        vagranthost.restore(vagrantbox.DEFAULT_DATA_DIR)


@pytest.fixture(scope="module")
def box(root):
    _image_changed, image_info = image.ensure_image(os.path.expanduser("~/.cache/nswap"))
    _box_changed, info = vagrantbox.ensure_box(vagrantbox.DEFAULT_DATA_DIR, image_info)
    return info


# A session that is killed together with the libvirtd it started (a killed test run, a
# reboot): its pool stays defined in libvirt's persistent config while nothing answers.
KILLED_SESSION = """
import sys, time
sys.path.insert(0, %r)
import harness
from harness import vagranthost
with vagranthost.session(%r):
    print("ready", flush=True)
    time.sleep(600)
"""


def test_a_session_killed_with_its_libvirtd_is_undone_by_the_next(root):
    data_dir = vagrantbox.DEFAULT_DATA_DIR
    before = host_state()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SESSION % (REPO, data_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    state = None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 180)
        assert ready and proc.stdout.readline().strip() == "ready"
        state = vagranthost.read_json(vagranthost.paths(data_dir)["state"])
        assert state and state["started"], state  # it started libvirtd: none answered
        assert vagranthost.virsh("pool-info", vagranthost.POOL, check=False).returncode == 0
    finally:
        proc.kill()
        proc.wait(timeout=60)
    for pid in (state or {}).get("started", {}).values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 60
    while vagranthost.libvirtd_answers() and time.time() < deadline:
        time.sleep(0.5)
    assert not vagranthost.libvirtd_answers()
    assert os.path.exists(vagranthost.paths(data_dir)["state"])  # what it left
    with vagranthost.session(data_dir) as files:
        assert os.path.isdir(files["pool"])
        info = vagranthost.virsh("pool-info", vagranthost.POOL).stdout
        assert re.search(r"State:\s+running", info), info
    assert vagranthost.leftovers(data_dir) == {}
    assert host_state() == before


def test_molecule_vagrant_scenario_passes_and_leaves_nothing(box):
    data_dir = vagrantbox.DEFAULT_DATA_DIR
    before = host_state()
    env = vagranthost.session_env(box)
    env.update(PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]), ANSIBLE_FORCE_COLOR="0")
    env.update(PY_COLORS="0", NO_COLOR="1")
    with vagranthost.session(data_dir):
        kvm_gid = grp.getgrnam(vagranthost.KVM_GROUP).gr_gid
        assert vagranthost.kvm_state() in (None, {"mode": 0o660, "gid": kvm_gid})
        assert vagranthost.route_guard_present()
        # the log (with each step's time) is what scripts/test's phase table reads
        returncode, out = molecule.run(
            "vagrant",
            REPO,
            env,
            MOLECULE_TIMEOUT_S,
            MOLECULE_LOG,
            molecule=os.path.join(VENV_BIN, "molecule"),
        )
    assert returncode == 0, failure_report(out)
    # a prerun would reinstall the collection under the other scenario's feet
    assert "Performing prerun" not in out
    for step in ("create", "converge", "verify", "destroy"):
        assert re.search(r"%s: Executed: Successful" % step, out), step
    match = re.search(r"=+ (\d+) passed", out)
    passed = int(match.group(1)) if match else 0
    assert passed >= 7 and not re.search(r"\d+ failed", out), failure_report(out)
    assert vagranthost.leftovers(data_dir) == {}
    assert vm_qemu_processes() == []
    assert host_state() == before
