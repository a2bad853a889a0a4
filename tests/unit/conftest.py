"""Fixtures the unit tests share with tests/integration."""

from ..integration import test_nswapd

# The nswap_server and nswap_info module tests talk to a real nswapd, built once per
# session like the integration tests build it.  Bound by assignment rather than imported
# by name, so that no test module holds an import it never reads.
nswapd_bin = test_nswapd.nswapd_bin
