# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one rule for a node's nswap address, used by every role and playbook."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: nswap_address
short_description: The address a node uses for nswap traffic
version_added: 0.1.0
description:
  - The one rule of this collection for a node's nswap address, used by every role and
    playbook (nswapd's listen address, the clients' server list, the smoke test).
  - The host variable C(nswap_address) when it is set and not empty, else the node's default
    IPv4 address, C(ansible_facts['default_ipv4']['address']) (gathered with the C(network)
    fact subset).
  - Fails naming the host and both ways to fix it when neither is known.
positional: hostvars
options:
  _input:
    description: The inventory name of the node.
    type: str
    required: true
  hostvars:
    description: The play's C(hostvars).
    type: dict
    required: true
"""

EXAMPLES = r"""
listen: "{{ inventory_hostname | nswap.cluster.nswap_address(hostvars) }}"
servers: "{{ groups['nswap_servers'] | map('nswap.cluster.nswap_address', hostvars) | list }}"
"""

RETURN = r"""
_value:
  description: The node's nswap address (IPv4 or IPv6, as written in the inventory).
  type: str
"""

from ansible.errors import AnsibleFilterError


def nswap_address(host, hostvars):
    host = str(host)
    if host not in hostvars:
        raise AnsibleFilterError(
            "nswap_address: %s is not a host of this inventory; add it (with nswap_address) "
            "or give the server as ADDR:PORT" % host
        )
    node = hostvars[host]
    address = node.get("nswap_address")
    if address is not None and str(address).strip():
        return str(address).strip()
    facts = node.get("ansible_facts") or {}
    address = (facts.get("default_ipv4") or {}).get("address")
    if address:
        return str(address)
    raise AnsibleFilterError(
        "nswap_address: %s has no nswap address: set the host variable nswap_address in the "
        "inventory (the address on the cluster network), or gather its facts (setup with "
        "gather_subset network) so that its default IPv4 address is used" % host
    )


class FilterModule(object):
    def filters(self):
        return {"nswap_address": nswap_address}
