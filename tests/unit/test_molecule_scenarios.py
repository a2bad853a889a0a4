"""The molecule scenarios' settings that let scripts/test run them at the same time.

Molecule's prerun installs the collection into ~/.ansible/collections; with two
scenarios running side by side, one scenario's reinstall removed the roles the other
was reading ("Could not find or access .../absent.yml", CI of 2026-11-22).  Both
scenarios skip the prerun; `default` deploys from the tarball that
tests/integration/test_molecule_default.py installs into build/installed (what users
get), `vagrant` from the checkout through build/collections.
"""

import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = ["default", "vagrant"]


def scenario(name):
    with open(os.path.join(REPO, "molecule", name, "molecule.yml")) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_skips_the_prerun_install(name):
    assert scenario(name).get("prerun") is False


@pytest.mark.parametrize(
    ("name", "path"),
    [("default", "build/installed/collections"), ("vagrant", "build/collections")],
)
def test_scenario_reads_its_own_collection_path(name, path):
    env = scenario(name)["provisioner"]["env"]
    assert env["ANSIBLE_COLLECTIONS_PATH"] == "${MOLECULE_PROJECT_DIRECTORY}/" + path
