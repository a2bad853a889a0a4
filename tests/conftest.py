"""Fixtures for every test folder.

Importing the test harness makes this checkout importable as the collection
``ansible_collections.nswap.cluster`` (harness/bootstrap.py): Ansible modules import
shared code by that name.
"""

import pytest

from harness import nswapd


@pytest.fixture(scope="session")
def nswapd_bin():
    """nswapd built from src/nswapd once per session, or the binary NSWAPD_BIN names."""
    return nswapd.build()
