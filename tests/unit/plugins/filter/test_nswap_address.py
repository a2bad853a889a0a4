"""The one address rule (plugins/filter/nswap_address.py)."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.nswap.cluster.plugins.filter.nswap_address import nswap_address

HOSTVARS = {
    "set": {
        "nswap_address": "10.77.0.12",
        "ansible_facts": {"default_ipv4": {"address": "192.0.2.5"}},
    },
    "v6": {"nswap_address": "fd00::5"},
    "empty": {"nswap_address": " ", "ansible_facts": {"default_ipv4": {"address": "192.0.2.6"}}},
    "facts": {
        "ansible_host": "127.0.0.1",
        "ansible_facts": {"default_ipv4": {"address": "192.0.2.7"}},
    },
    "nothing": {"ansible_host": "127.0.0.1", "ansible_facts": {}},
}


@pytest.mark.parametrize(
    ("host", "address"),
    [("set", "10.77.0.12"), ("v6", "fd00::5"), ("empty", "192.0.2.6"), ("facts", "192.0.2.7")],
)
def test_nswap_address_first_then_the_default_ipv4(host, address):
    assert nswap_address(host, HOSTVARS) == address


def test_ansible_host_is_never_used():
    with pytest.raises(AnsibleFilterError) as exc:
        nswap_address("nothing", HOSTVARS)
    assert "nothing has no nswap address: set the host variable nswap_address" in str(exc.value)
    assert "gather its facts" in str(exc.value)


def test_unknown_host_is_named():
    with pytest.raises(AnsibleFilterError, match="nosuch is not a host of this inventory"):
        nswap_address("nosuch", HOSTVARS)
