# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the lab role: the VM layout derived from counts and a subnet."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: lab_layout
short_description: Names, groups and addresses of the lab VMs
version_added: 0.1.0
description:
  - Turns the number of clients and servers into a list of VMs, each with C(name),
    C(index), C(group) (V(nswap_clients) or V(nswap_servers)), C(ip) and C(address)
    (ip with prefix length) on O(subnet).  Clients come first (client1, client2, ...),
    then servers (server1, ...); addresses start at the subnet's 11th host.
positional: clients, servers
options:
  _input:
    description: The lab subnet, e.g. C(10.77.0.0/24).
    type: str
    required: true
  clients:
    description: Number of client VMs.
    type: int
    required: true
  servers:
    description: Number of server VMs.
    type: int
    required: true
"""

EXAMPLES = r"""
vms: "{{ '10.77.0.0/24' | nswap.cluster.lab_layout(1, 3) }}"
"""

RETURN = r"""
_value:
  description: One dict per VM.
  type: list
  elements: dict
"""

import ipaddress

from ansible.errors import AnsibleFilterError

FIRST_HOST = 10  # .1-.10 stay free for things that are not VMs


def lab_layout(subnet, clients, servers):
    try:
        net = ipaddress.ip_network(subnet)
        clients, servers = int(clients), int(servers)
    except ValueError as exc:
        raise AnsibleFilterError("lab_layout: %s" % exc)
    if clients < 0 or servers < 0 or clients + servers == 0:
        raise AnsibleFilterError(
            "lab_layout: %d clients and %d servers: the lab needs at least one VM "
            "(set lab_clients and lab_servers to 0 or more, not both 0)" % (clients, servers)
        )
    hosts = list(net.hosts())
    # keep the last host for the namespace's own bridge address
    if FIRST_HOST + clients + servers > len(hosts) - 1:
        raise AnsibleFilterError(
            "lab_layout: subnet %s has too few addresses for %d VMs; use a larger subnet"
            % (subnet, clients + servers)
        )
    vms = []
    roles = [("client", "nswap_clients")] * clients + [("server", "nswap_servers")] * servers
    counts = {}
    for index, (kind, group) in enumerate(roles):
        counts[kind] = counts.get(kind, 0) + 1
        ip = hosts[FIRST_HOST + index]
        vms.append(
            {
                "name": "%s%d" % (kind, counts[kind]),
                "index": index,
                "group": group,
                "ip": str(ip),
                "address": "%s/%d" % (ip, net.prefixlen),
            }
        )
    return vms


class FilterModule:
    def filters(self):
        return {"lab_layout": lab_layout}
