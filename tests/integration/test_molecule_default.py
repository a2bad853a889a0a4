"""`molecule test -s default`: nswap deployed on the VM lab, end to end.

One lab boot (lab name `molecule`, 1 client and 2 servers): create, converge
(playbooks/deploy.yml), idempotence, check (a --check converge), verify
(molecule/default/tests/test_default.py: module, device, swap priorities, nswapd,
pages reaching the servers, --check --diff of a changed priority, bad priority,
unknown server, missing kernel headers) and destroy.  Tens of minutes under TCG.
"""

import os
import re
import subprocess

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils.lab import net, vm

pytestmark = [pytest.mark.lab, pytest.mark.e2e]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
LAB = "molecule"
TIMEOUT = 3000
MOLECULE_LOG = "/tmp/nswap-molecule-default.log"


def env():
    result = dict(os.environ, ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1")
    result["PATH"] = "%s:%s" % (VENV_BIN, os.environ["PATH"])
    return result


def remove_lab():
    subprocess.run(
        [os.path.join(VENV_BIN, "ansible-playbook"), "playbooks/lab.yml"]
        + ["-e", "lab_name=%s" % LAB, "-e", "lab_state=absent"],
        cwd=REPO,
        env=env(),
        capture_output=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def molecule_test():
    try:
        proc = subprocess.run(
            [os.path.join(VENV_BIN, "molecule"), "test", "-s", "default"],
            cwd=REPO,
            env=env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        remove_lab()  # also after a timeout or a failed destroy
    with open(MOLECULE_LOG, "w") as log:  # scripts/test prints each step's times from it
        log.write(proc.stdout + proc.stderr)
    return proc.returncode, proc.stdout + proc.stderr


def test_scenario_passes(molecule_test):
    rc, out = molecule_test
    assert rc == 0, out[-8000:]
    # a prerun would reinstall the collection under the other scenario's feet
    assert "Performing prerun" not in out


def test_idempotence_and_check_ran_and_passed(molecule_test):
    _rc, out = molecule_test
    assert re.search(r"idempotence.*Executed: Successful", out), out[-4000:]
    assert re.search(r"check.*Executed: Successful", out), out[-4000:]
    assert "Idempotence test failed" not in out


def test_verify_ran_every_check(molecule_test):
    _rc, out = molecule_test
    match = re.search(r"(\d+) passed", out)
    assert match and int(match.group(1)) >= 11, out[-4000:]
    assert not re.search(r"\d+ failed", out)


def test_nothing_is_left_behind(molecule_test):
    assert vm.lab_processes(LAB) == []
    assert not net.netns_exists("nswap-lab-%s" % LAB)
    assert not os.path.exists(os.path.expanduser("~/.cache/nswap/labs/%s" % LAB))
