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


@pytest.fixture
def start_server(nswapd_bin):
    """start(*args, env=None): an nswapd on loopback, stopped after the test, which fails
    unless it then exits 0."""
    servers = []

    def start(*args, env=None):
        srv = nswapd.Nswapd(nswapd_bin, *args, env=env)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        if srv.alive():
            rc = srv.stop()
            assert rc == 0, "nswapd exited %s\n%s" % (rc, srv.log_text())
