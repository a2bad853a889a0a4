"""The molecule scenarios' settings that let scripts/test run them at the same time.

Molecule's prerun installs the collection into ~/.ansible/collections; with two
scenarios running side by side, one scenario's reinstall removed the roles the other
was reading ("Could not find or access .../absent.yml", CI of 2026-11-22).  Both
scenarios must use the checkout through build/collections and skip the prerun.
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


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_uses_the_checkout_as_the_collection(name):
    env = scenario(name)["provisioner"]["env"]
    assert env["ANSIBLE_COLLECTIONS_PATH"] == "${MOLECULE_PROJECT_DIRECTORY}/build/collections"
