#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: lab_vm
short_description: One VM of the nswap lab (a QEMU process on a qcow2 overlay)
version_added: 0.1.0
description:
  - Starts a Debian VM from the lab image (see M(nswap.cluster.lab_image)) on a fresh qcow2
    overlay, with a user-mode NIC that forwards SSH from a free port on 127.0.0.1 and a NIC
    on the lab's private segment (see M(nswap.cluster.lab_network)) with a fixed address.
  - Idempotent; a VM that runs with the same configuration is left alone, one whose
    configuration changed (or whose process died) is recreated from scratch.
  - Uses KVM only where hardware virtualization really works (vmx/svm), else TCG.
  - Returns as soon as QEMU runs; waiting for SSH is the caller's job.
author:
  - nswap developers (@nswap)
extends_documentation_fragment:
  - nswap.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the VM would be started, recreated or stopped; starts and
      stops nothing.
  diff_mode:
    support: full
    details: Shows the VM's configuration before and after.
options:
  lab:
    description: Lab name.
    type: str
    default: default
  name:
    description: VM name; also its hostname.
    type: str
    required: true
  index:
    description: Position of the VM in the lab; selects its tap and MAC address.
    type: int
    required: true
  address:
    description: Address with prefix length on the private segment.
    type: str
    required: true
  memory_mib:
    description: RAM in MiB (at least 256).
    type: int
    default: 1024
  cpus:
    description: Virtual CPUs.
    type: int
    default: 1
  swap_disk_mib:
    description: Size of an extra raw disk (serial C(nswap-swap)) for disk swap; 0 for none.
    type: int
    default: 0
  image:
    description: The result of M(nswap.cluster.lab_image) (keys key, base, kernel, initrd).
    type: dict
  workdir:
    description: Directory for the VM's overlay, serial log, pid and state files.
    type: path
    required: true
  state:
    description: Whether the VM should run.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Start a server VM
  nswap.cluster.lab_vm:
    name: server1
    index: 1
    address: 10.77.0.21/24
    memory_mib: 1024
    image: "{{ lab_image }}"
    workdir: ~/.cache/nswap/labs/default
"""

RETURN = r"""
ssh_port:
  description: Port on 127.0.0.1 forwarded to the VM's SSH.
  returned: state=present
  type: int
pid:
  description: PID of the QEMU process.
  returned: state=present
  type: int
serial_log:
  description: File receiving the VM's serial console.
  returned: state=present
  type: str
accel:
  description: QEMU accelerator used (kvm or tcg).
  returned: state=present
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nswap.cluster.plugins.module_utils.lab import vm
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    check_lab_name,
    read_json,
)


def build_spec(params):
    image = params["image"] or {}
    missing = [k for k in ("key", "base", "kernel", "initrd") if not image.get(k)]
    if missing:
        raise LabError(
            "image is missing %s: pass the registered result of "
            "nswap.cluster.lab_image" % ", ".join(missing)
        )
    return vm.VMSpec(
        lab=check_lab_name(params["lab"]),
        name=params["name"],
        index=params["index"],
        memory_mib=params["memory_mib"],
        cpus=params["cpus"],
        swap_disk_mib=params["swap_disk_mib"],
        address=params["address"],
        image_key=image["key"],
        base=image["base"],
        kernel=image["kernel"],
        initrd=image["initrd"],
        workdir=params["workdir"],
        accel="kvm" if vm.hardware_virtualization() else "tcg",
    )


def vm_result(state, spec):
    return dict(
        ssh_port=state["ssh_port"],
        pid=state["pid"],
        serial_log=state["serial_log"],
        accel=spec.accel,
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=dict(type="str", default="default"),
            name=dict(type="str", required=True),
            index=dict(type="int", required=True),
            address=dict(type="str", required=True),
            memory_mib=dict(type="int", default=1024),
            cpus=dict(type="int", default=1),
            swap_disk_mib=dict(type="int", default=0),
            image=dict(type="dict"),
            workdir=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["image"])],
        supports_check_mode=True,
    )
    params = module.params
    workdir = params["workdir"]  # type=path: "~" already expanded
    try:
        if params["state"] == "absent":
            lab = check_lab_name(params["lab"])
            label = vm.vm_label(lab, params["name"])
            state_file = os.path.join(workdir, params["name"] + ".json")
            changed = bool(vm.processes_with_label(label)) or os.path.exists(state_file)
            if changed and not module.check_mode:
                spec_dict = (read_json(state_file) or {}).get("spec")
                if spec_dict:
                    vm.stop(vm.VMSpec(**spec_dict))
                else:
                    vm.kill_processes(vm.processes_with_label(label))
            module.exit_json(
                changed=changed, diff=dict(before={"running": changed}, after={"running": False})
            )
        spec = build_spec(params)
        state = vm.status(spec)
        if state:
            module.exit_json(changed=False, **vm_result(state, spec))
        before = (read_json(spec.path(".json")) or {}).get("spec", {})
        if module.check_mode:
            module.exit_json(
                changed=True, accel=spec.accel, diff=dict(before=before, after=spec.as_dict())
            )
        state = vm.start(spec)
    except LabError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=True, diff=dict(before=before, after=spec.as_dict()), **vm_result(state, spec)
    )


if __name__ == "__main__":
    main()
