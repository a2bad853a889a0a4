"""Test and development tooling for nswap.cluster: the mini VM, kernel kits, the
nswap.ko builder, Vagrant host preparation, the nswapd fixture, the collection
bootstrap.  Lives outside the collection (galaxy.yml build_ignore): nothing here
ships to users."""

from harness import bootstrap

# Every harness module imports the collection's module_utils by their collection name
# (ansible_collections.nswap.cluster...); making that name resolvable here means no caller
# has to remember to do it before importing one of them.
bootstrap.ensure()
