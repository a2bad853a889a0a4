#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nswap_info
short_description: Facts about nswap on a node - kernel module, devices, servers, counters
version_added: 0.1.0
description:
  - Reads, and never changes, what nswap looks like on a node; returns it as RV(nswap).
  - The kernel module C(nswap.ko), whether it is loaded, its version and parameters
    (C(/sys/module/nswap)).  A node without it (never deployed, or unloaded) is no error -
    RV(nswap.module.loaded) is false, RV(nswap.module.error) says why no device can be used
    and how to fix it, and RV(nswap.devices) is empty.
  - The nswap devices configured in configfs (C(/sys/kernel/config/nswap/<name>/)) with their
    size, client id and power, the memory servers each uses and their connection state, and
    the counters of powered devices (C(/sys/block/nswapN/nswap/)).
  - The active swap areas (C(/proc/swaps)), nswap devices marked.
  - The local memory server C(nswapd), if one answers STATUS on O(server_address) within
    O(timeout).
author:
  - nswap developers (@nswap)
extends_documentation_fragment:
  - nswap.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reads only; the same in check mode.
  diff_mode:
    support: none
options:
  server:
    description: Also ask the local nswapd for its STATUS.
    type: bool
    default: true
  server_address:
    description: Address of the local nswapd.
    type: str
    default: 127.0.0.1
  server_port:
    description: Port of the local nswapd.
    type: int
    default: 7405
  timeout:
    description: Seconds to wait for nswapd to connect and answer.
    type: float
    default: 2
notes:
  - Reading configfs and sysfs needs no privileges; the module runs as any user.
seealso:
  - module: nswap.cluster.nswap_server
"""

EXAMPLES = r"""
- name: Gather nswap facts
  nswap.cluster.nswap_info:
  register: info

- name: Fail when a device has a server that is not up
  ansible.builtin.assert:
    that: item.servers | rejectattr('state', 'equalto', 'up') | list | length == 0
    fail_msg: "{{ item.name }}: a server is not connected"
  loop: "{{ info.nswap.devices }}"
  when: item.power == 1

- name: Show the local memory server's usage
  ansible.builtin.debug:
    msg: "{{ info.nswap.server.status.used_pages }} of {{ info.nswap.server.status.limit_pages }}"
  when: info.nswap.server.running
"""

RETURN = r"""
nswap:
  description: What nswap looks like on the node.
  returned: always
  type: dict
  contains:
    module:
      description: The kernel module.
      type: dict
      contains:
        loaded:
          description: Whether C(nswap.ko) is loaded.
          type: bool
        version:
          description: Its C(MODULE_VERSION) (C(/sys/module/nswap/version)); null when not
            loaded.
          type: str
        srcversion:
          description: Checksum of its sources, to tell builds apart.
          type: str
        parameters:
          description: Module parameters (C(/sys/module/nswap/parameters)); empty when not
            loaded.
          type: dict
        error:
          description: Why no nswap device can be used on the node, with the fix - nswap.ko
            not loaded (load it with C(modprobe nswap) or the C(nswap.cluster.nswap_kmod)
            role), or configfs not mounted; null when devices can be used.
          type: str
          sample: "nswap.ko is not loaded (no /sys/module/nswap); load it: modprobe nswap, or
            deploy it with the nswap.cluster.nswap_kmod role"
      sample: {loaded: true, version: 0.1.0, srcversion: 8C1E2A4F, parameters: {timeout_ms: 10000},
               error: null}
    devices:
      description: One entry per configfs item; empty when nswap.ko is not loaded.
      type: list
      elements: dict
      contains:
        name:
          description: The configfs item name.
          type: str
        index:
          description: N of C(/dev/nswapN).
          type: int
        path:
          description: C(/dev/nswapN) while powered on, else null.
          type: str
        size:
          description: Size in bytes.
          type: int
        power:
          description: 1 when powered on.
          type: int
        client_id:
          description: The id the device's pages are filed under at the servers.
          type: str
        connections_per_server:
          description: TCP connections to each server.
          type: int
        timeout_ms:
          description: Per-request timeout.
          type: int
        retries:
          description: Reissues of a failed request.
          type: int
        servers:
          description: The memory servers, with their connection state (V(idle) powered off,
            V(connecting), V(up)).
          type: list
          elements: dict
          sample: [{name: "10.77.0.12:7405", address: 10.77.0.12, port: 7405, state: up}]
        counters:
          description: The sysfs counters (docs/kmod.md); C(latency_hist) as
            C([lower_us, count]) pairs.  Empty while powered off.
          type: dict
          sample: {puts: 1000, gets: 400, errors: 0, inflight: 0}
        swap:
          description: The device's entry in RV(nswap.swaps) when it is an active swap area.
          type: dict
    swaps:
      description: Active swap areas, sizes in bytes, C(nswap) true for nswap devices.
      type: list
      elements: dict
      sample: [{name: /dev/nswap0, type: partition, size: 1073737728, used: 0, priority: 100,
                nswap: true}]
    server:
      description: The local nswapd.
      type: dict
      contains:
        running:
          description: Whether it answered STATUS; null when O(server=false).
          type: bool
        address:
          description: Where it was asked.
          type: str
        error:
          description: Why it did not answer.
          type: str
        status:
          description: Its STATUS counters (as nswap.cluster.nswap_server returns them).
          type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_ko
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_server as server_util

# The directory that stands for "/"; module-level so that tests can point it elsewhere.
ROOT = "/"


def local_server(params):
    address, port = params["server_address"], params["server_port"]
    result = dict(running=None, address=server_util.where(address, port), error=None, status={})
    if not params["server"]:
        return result
    try:
        status = server_util.read_status(address, port, params["timeout"])
    except server_util.ServerError as exc:
        result.update(running=False, error=str(exc))
        return result
    result.update(running=True, status=server_util.status_dict(status))
    return result


def gather(params, root):
    ko = nswap_ko.NswapKo(root)
    return dict(
        module=ko.kernel_module(),
        devices=ko.devices(),
        swaps=ko.swap_areas(),
        server=local_server(params),
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            server=dict(type="bool", default=True),
            server_address=dict(type="str", default="127.0.0.1"),
            server_port=dict(type="int", default=server_util.proto.DEFAULT_PORT),
            timeout=dict(type="float", default=2.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 0 < params["timeout"] <= 3600:
        module.fail_json(
            msg="timeout=%s must be more than 0 and at most 3600 seconds" % params["timeout"]
        )
    if not 0 < params["server_port"] < 65536:
        module.fail_json(msg="server_port=%d must be 1 to 65535" % params["server_port"])
    module.exit_json(changed=False, nswap=gather(params, ROOT))


if __name__ == "__main__":
    main()
