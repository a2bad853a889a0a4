"""`molecule test -s default`: nswap deployed on the VM lab and benchmarked, end to end:
the test run's one lab-based end-to-end run.

The collection is first built as a tarball and installed into
build/installed/collections (harness.collection.install()); molecule deploys and
benchmarks from that copy, by FQCN (nswap.cluster.deploy, nswap.cluster.benchmark), so a
file missing from the tarball fails here.
One lab boot (lab name `molecule`, 1 client and 2 servers): create, check (a --check
converge on the never-deployed lab), converge, idempotence, verify
(molecule/default/tests/test_default.py: the check changed nothing, module, device, swap
priorities, nswapd on its nswap address, pages reaching the servers, --check --diff of a
changed priority, bad priority, unknown server, missing kernel headers, a runtime
cache-limit change without a restart, a restart of a page-holding nswapd refused; then
test_benchmark.py: the quick benchmark, every node's swap put back, and its report; last,
a rolling re-deploy of the servers under a workload, every byte checked) and destroy.
About 25 minutes under TCG."""

import os
import re
import subprocess

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils.lab import net, vm

from harness import collection, molecule

pytestmark = [pytest.mark.lab, pytest.mark.e2e]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
LAB = "molecule"
TIMEOUT = 3600
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
    # molecule.yml points ANSIBLE_COLLECTIONS_PATH at this fresh copy of the tarball
    path, _tarball = collection.install()
    assert path == os.path.join(REPO, "build", "installed", "collections"), path
    try:
        # the log (with each step's time) is what scripts/test's phase table reads
        return molecule.run(
            "default",
            REPO,
            env(),
            TIMEOUT,
            MOLECULE_LOG,
            molecule=os.path.join(VENV_BIN, "molecule"),
        )
    finally:
        remove_lab()  # also after a timeout or a failed destroy


def test_scenario_passes(molecule_test):
    rc, out = molecule_test
    assert rc == 0, out[-8000:]
    # a prerun would reinstall the collection under the other scenario's feet
    assert "Performing prerun" not in out


def test_idempotence_and_check_ran_and_passed(molecule_test):
    _rc, out = molecule_test
    assert re.search(r"idempotence.*Executed: Successful", out), out[-4000:]
    # on the never-deployed lab, before converge (test_default.py's
    # test_first_check_found_nothing_and_changed_nothing shows it changed nothing)
    assert re.search(r"check.*Executed: Successful", out), out[-4000:]
    assert "Idempotence test failed" not in out


def test_verify_ran_every_check(molecule_test):
    _rc, out = molecule_test
    # every test that verify selected passed: none failed, none skipped (the long runs
    # are deselected unless NSWAP_LONG_TESTS=1)
    collected = re.search(r"collected (\d+) items", out)
    passed = re.search(r"(\d+) passed", out)
    assert collected and passed, out[-4000:]
    deselected = re.search(r"collected \d+ items / (\d+) deselected", out)
    selected = int(collected.group(1)) - (int(deselected.group(1)) if deselected else 0)
    # the checks the docstring lists: 14 of the deploy, 6 of the benchmark, the rolling
    # re-deploy (in the test command since its 16 MiB workload, after the benchmark)
    assert int(collected.group(1)) >= 21, out[-4000:]
    assert re.search(
        r"test_benchmark\.py::test_report_has_table1_and_a_table2_fit\S* PASSED", out
    ), out[-4000:]
    assert re.search(
        r"test_default\.py::test_a_rolling_re_deploy_under_a_workload_loses_no_byte PASSED", out
    ), out[-4000:]
    assert int(passed.group(1)) == selected, out[-4000:]
    assert not re.search(r"\d+ (failed|skipped|error)", out), out[-4000:]


def test_nothing_is_left_behind(molecule_test):
    assert vm.lab_processes(LAB) == []
    assert not net.netns_exists("nswap-lab-%s" % LAB)
    assert not os.path.exists(os.path.expanduser("~/.cache/nswap/labs/%s" % LAB))
