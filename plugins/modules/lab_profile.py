#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: lab_profile
short_description: Disk and link limits of a running nswap lab, changed without a reboot
version_added: 0.1.0
description:
  - Throttles the swap disk of every lab VM (QEMU C(block_set_io_throttle) through the VM's
    monitor socket, limiting total IOPS and bytes per second) and/or limits the lab link
    (C(tc tbf) on the egress of every tap in the lab namespace, so each VM receives at most
    the rate).
  - Takes effect at once on running VMs; a VM restarted by M(nswap.cluster.lab_vm) starts
    unthrottled, so apply the profile again after (re)creating VMs (role C(lab) does).
  - The named profiles (hdd, ssd, nvme; 10mbit, 100mbit, 1gbit) and their numbers are in
    C(roles/lab/vars/profiles.yml); this module takes plain numbers.
  - Must run on the controller as root.
author:
  - nswap developers (@nswap)
extends_documentation_fragment:
  - nswap.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reads the current limits and reports the ones that would change.
  diff_mode:
    support: full
    details: Shows each VM's disk limits and link rate before and after.
options:
  lab:
    description: Lab name (1-8 lowercase letters or digits).
    type: str
    default: default
  workdir:
    description: The lab directory (VM state files and monitor sockets), C(lab_dir) of role C(lab).
    type: path
    required: true
  disk_iops:
    description: Total read+write requests per second of each swap disk; 0 for no limit.
      Leave out (with O(disk_bps)) to leave the disks alone.
    type: int
  disk_bps:
    description: Total read+write bytes per second of each swap disk; 0 for no limit.
    type: int
  link_rate_mbit:
    description: Receive rate of each VM on the lab segment in Mbit/s; 0 for no limit.
      Leave out to leave the link alone.
    type: int
"""

EXAMPLES = r"""
- name: Model the paper's HDD and 100BaseT
  nswap.cluster.lab_profile:
    lab: bench
    workdir: ~/.cache/nswap/labs/bench
    disk_iops: 80
    disk_bps: 40000000
    link_rate_mbit: 100

- name: Back to unthrottled
  nswap.cluster.lab_profile:
    lab: bench
    workdir: ~/.cache/nswap/labs/bench
    disk_iops: 0
    disk_bps: 0
    link_rate_mbit: 0
"""

RETURN = r"""
profile:
  description: Per VM, the disk limits and link rate in force after the run.
  returned: success
  type: dict
  sample: {"client1": {"disk": {"bps": 40000000, "iops": 80}, "link_rate_mbit": 100}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nswap.cluster.plugins.module_utils.lab import profiles
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    check_lab_name,
)


class LabProfile:
    def __init__(self, module):
        self.module = module
        params = module.params
        self.lab = check_lab_name(params["lab"])
        self.workdir = params["workdir"]
        self.disk = None
        if params["disk_iops"] is not None or params["disk_bps"] is not None:
            self.disk = {"bps": params["disk_bps"] or 0, "iops": params["disk_iops"] or 0}
        self.link = params["link_rate_mbit"]
        for name, value in (
            ("disk_iops", params["disk_iops"]),
            ("disk_bps", params["disk_bps"]),
            ("link_rate_mbit", self.link),
        ):
            if value is not None and value < 0:
                raise LabError("%s=%d: use 0 (no limit) or a positive number" % (name, value))

    def wanted(self, before):
        after = {}
        for name, entry in before.items():
            after[name] = dict(entry)
            if "disk" in entry:
                after[name]["disk"] = dict(self.disk)
            if self.link is not None:
                after[name]["link_rate_mbit"] = self.link
        return after

    def run(self):
        vms = profiles.lab_vms(self.workdir)
        before = profiles.current(
            self.lab, self.workdir, vms, self.disk is not None, self.link is not None
        )
        after = self.wanted(before)
        changed = before != after
        if changed and not self.module.check_mode:
            for name, vm in sorted(vms.items()):
                if after[name].get("disk") != before[name].get("disk"):
                    profiles.set_disk_throttle(
                        self.workdir, name, self.disk["bps"], self.disk["iops"]
                    )
                if after[name].get("link_rate_mbit") != before[name].get("link_rate_mbit"):
                    profiles.set_link_rate(self.lab, vm["index"], self.link)
        return dict(changed=changed, profile=after, diff=dict(before=before, after=after))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=dict(type="str", default="default"),
            workdir=dict(type="path", required=True),
            disk_iops=dict(type="int"),
            disk_bps=dict(type="int"),
            link_rate_mbit=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    try:
        result = LabProfile(module).run()
    except LabError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
