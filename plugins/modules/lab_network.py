#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: lab_network
short_description: The private L2 segment of the nswap VM lab
version_added: 0.1.0
description:
  - Creates a network namespace C(nswap-lab-<lab>) holding a bridge and one tap per VM.
    The lab VMs talk to each other over that bridge with fixed addresses; the namespace
    itself gets the last address of O(subnet), so tools run with C(ip netns exec) can reach
    the VMs too.  Lab addresses exist only inside that namespace.
  - V(absent) stops every QEMU process labelled for the lab (they hold the taps), then
    deletes the namespace with everything in it.  With O(sweep_all=true) it also removes
    the namespaces and VMs of other labs, e.g. left behind by a killed run.
  - Must run on the controller as root.
author:
  - nswap developers (@nswap)
extends_documentation_fragment:
  - nswap.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the namespace, bridge or taps would change; changes nothing.
  diff_mode:
    support: full
    details: Shows the namespace, its taps and address before and after.
options:
  lab:
    description: Lab name (1-8 lowercase letters or digits).
    type: str
    default: default
  subnet:
    description: IPv4 subnet of the segment.
    type: str
    default: 10.77.0.0/24
  taps:
    description: Number of taps (one per VM).
    type: int
    default: 4
  state:
    description: Whether the segment should exist.
    type: str
    choices: [present, absent]
    default: present
  sweep_all:
    description: With O(state=absent), also remove every other lab's namespace and VMs.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Private segment for four VMs
  nswap.cluster.lab_network:
    lab: default
    taps: 4

- name: Remove it, and anything a killed run left behind
  nswap.cluster.lab_network:
    lab: default
    state: absent
    sweep_all: true
"""

RETURN = r"""
netns:
  description: Network namespace of the lab.
  returned: always
  type: str
  sample: nswap-lab-default
bridge_address:
  description: The namespace's own address on the segment.
  returned: state=present
  type: str
  sample: 10.77.0.254/24
removed:
  description: Namespaces removed (state=absent).
  returned: state=absent
  type: list
  elements: str
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nswap.cluster.plugins.module_utils.lab import net, vm
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    check_lab_name,
    netns_name,
)


def absent(module, lab):
    targets = [netns_name(lab)] if net.netns_exists(netns_name(lab)) else []
    pids = vm.lab_processes(lab)
    if module.params["sweep_all"]:
        targets = sorted(set(targets + net.stale_namespaces()))
        pids = vm.all_lab_processes()
    changed = bool(targets or pids)
    if changed and not module.check_mode:
        vm.kill_processes(pids)
        for ns in targets:
            net.run(["ip", "netns", "del", ns])
    module.exit_json(
        changed=changed,
        netns=netns_name(lab),
        removed=targets,
        diff=dict(before={"netns": targets}, after={"netns": []}),
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=dict(type="str", default="default"),
            subnet=dict(type="str", default="10.77.0.0/24"),
            taps=dict(type="int", default=4),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            sweep_all=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        lab = check_lab_name(params["lab"])
        if params["state"] == "absent":
            absent(module, lab)
        try:
            subnet = ipaddress.ip_network(params["subnet"])
        except ValueError as exc:
            raise LabError(
                "subnet %r is not an IPv4 network: %s; use e.g. 10.77.0.0/24"
                % (params["subnet"], exc)
            )
        if subnet.version != 4 or subnet.num_addresses - 2 < params["taps"] + 1:
            raise LabError(
                "subnet %s is too small for %d VMs and the bridge; use a larger one"
                % (subnet, params["taps"])
            )
        if params["taps"] < 1:
            raise LabError("taps=%d: the lab needs at least one VM" % params["taps"])
        before = net.network_state(lab, str(subnet), params["taps"])
        after = net.wanted_state(lab, str(subnet), params["taps"])
        changed = before != after
        if changed and not module.check_mode:
            net.ensure_network(lab, str(subnet), params["taps"])
    except LabError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=changed,
        netns=after["netns"],
        bridge_address=after["bridge"],
        diff=dict(before=before, after=after),
    )


if __name__ == "__main__":
    main()
