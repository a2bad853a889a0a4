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
  - The gossip membership table of the local nswapd (O(gossip_table_file), which nswapd writes
    after every round when C(gossip = on), e.g. with the C(nswap.cluster.nswap_server) role's
    C(nswap_server_gossip=true)) as RV(nswap.gossip); null when gossip is off or the file is
    missing.  A file that cannot be read or parsed gives a warning and RV(nswap.gossip.error),
    not a failure; a file not rewritten for 10 rounds (at least 1 s) is RV(nswap.gossip.stale).
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
  gossip_table_file:
    description: The local nswapd's gossip table (its C(gossip_table_file)); an empty string
      skips it.
    type: str
    default: /run/nswap/gossip.json
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

- name: Fail when the gossip table misses a server or is stale
  ansible.builtin.assert:
    that:
      - not info.nswap.gossip.stale
      - info.nswap.gossip.alive + 1 == groups['nswap_servers'] | length
  when: info.nswap.gossip is not none and info.nswap.gossip.error is none

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
        migration:
          description: 1 when the device follows pages servers move (UPDATE); null from a
            module without the attribute.
          type: int
        sweep_interval_s:
          description: Seconds between dead-page sweeps, 0 when off; null from a module
            without the attribute.
          type: int
        backing:
          description: The disk fallback device (a block device path), V("") for none; null
            from a module without the attribute.  C(counters.disk_pages) says how many
            pages are on it now.
          type: str
        servers:
          description: The memory servers, with their connection state (V(idle) powered off,
            V(connecting), V(up)), C(pages) (slots whose page is on that server now; null
            from a module without the count) and C(hint) (the placement hint in force,
            C(free) and C(capacity) in pages, written by the node's nswapd from its gossip
            table; null without one).
          type: list
          elements: dict
          sample: [{name: "10.77.0.12:7405", address: 10.77.0.12, port: 7405, state: up,
                    pages: 1200, hint: {free: 60000, capacity: 65536}}]
        counters:
          description: The sysfs counters (docs/kmod.md); C(latency_hist) as
            C([lower_us, count]) pairs.  Empty while powered off.  Where the pages are -
            C(servers[].pages) on each server, C(disk_pages) on the backing device;
            C(migrations) and C(disk_writes) count how they got there.
          type: dict
          sample: {puts: 1000, gets: 400, errors: 0, inflight: 0, disk_pages: 0}
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
    gossip:
      description:
        - The local nswapd's gossip table file (src/nswapd/README.md, "Table file"); null when
          the file does not exist (gossip off, nswapd stopped, or O(gossip_table_file) empty).
        - The file's keys as written (C(version), C(pid), C(name), C(written_unix_ms),
          C(gossip_port), C(interval_ms), C(members_total), C(members_listed), C(alive),
          C(suspect), C(dead), C(left)) and those below.
      returned: always
      type: dict
      contains:
        path:
          description: The file read.
          type: str
          sample: /run/nswap/gossip.json
        error:
          description: Why the file could not be used (unreadable, not JSON, not a version 1
            table); then the other keys are null or empty.  Null when it was read.
          type: str
        age_ms:
          description: Milliseconds since nswapd wrote the file (from C(written_unix_ms)).
          type: int
        stale:
          description: True when the file was not rewritten for 10 gossip rounds (at least
            1 s) - nswapd hangs or no longer writes it; its contents are then old.
          type: bool
        self:
          description: This node's entry - C(id) (C(0x) and 16 hex digits), C(address),
            C(port) (TCP), C(state) (V(alive), V(suspect), V(dead), V(left)), C(incarnation),
            C(heartbeat), C(capacity) and C(free) (pages), C(load) (connections).
          type: dict
        members:
          description: The other nodes it knows (at most 4096), as RV(nswap.gossip.self)
            plus C(heard_ms_ago).
          type: list
          elements: dict
          sample: [{id: "0x5e2a0c41d9b3f107", address: 10.77.0.12, port: 7405, state: alive,
                    incarnation: 1767000000, heartbeat: 120, capacity: 65536, free: 60000,
                    load: 2, heard_ms_ago: 800}]
        stats:
          description: Its gossip counters (C(rounds), C(sent_datagrams), C(sent_bytes),
            C(recv_datagrams), C(recv_bytes), C(rejected), C(outside_subnet), C(send_errors),
            C(joins), C(suspected), C(declared_dead), C(refuted), C(expired)).
          type: dict
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_ko
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_server as server_util

# The directory that stands for "/"; module-level so that tests can point it elsewhere.
ROOT = "/"

# A table file not rewritten for this many rounds (and at least STALE_MIN_MS) is stale:
# nswapd rewrites it every round.
STALE_ROUNDS = 10
STALE_MIN_MS = 1000
# Keys a version 1 table has, with their types.
TABLE_KEYS = dict(written_unix_ms=int, interval_ms=int, self=dict, members=list, stats=dict)


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


def stale_after_ms(interval_ms):
    return max(STALE_ROUNDS * interval_ms, STALE_MIN_MS)


def table_error(table):
    """Why a parsed table file is not a version 1 table, or None."""
    if not isinstance(table, dict):
        return "not a JSON object"
    if table.get("version") != 1:
        return "version %r, not 1 (a newer nswapd?)" % (table.get("version"),)
    for key, kind in TABLE_KEYS.items():
        value = table.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return "%s is missing or not a %s" % (key, "number" if kind is int else kind.__name__)
    if not all(isinstance(member, dict) for member in table["members"]):
        return "members is not a list of objects"
    return None


def gossip_table(path, root, now_ms=None):
    """The table file at path (under root) as RV(nswap.gossip); None when it does not exist."""
    if not path:
        return None
    full = os.path.join(root, path.lstrip("/"))
    if not os.path.lexists(full):
        return None
    result = dict(path=path, error=None, age_ms=None, stale=None, self=None, members=[], stats={})
    try:
        with open(full, encoding="utf-8") as handle:
            table = json.load(handle)
    except (OSError, UnicodeDecodeError) as exc:
        result["error"] = "cannot read %s: %s" % (path, exc)
        return result
    except ValueError as exc:
        result["error"] = "%s is not JSON (%s)" % (path, exc)
        return result
    error = table_error(table)
    if error:
        result["error"] = "%s is not an nswapd gossip table: %s" % (path, error)
        return result
    result.update(table)
    result.update(path=path, error=None)
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    result["age_ms"] = now_ms - table["written_unix_ms"]
    result["stale"] = result["age_ms"] > stale_after_ms(table["interval_ms"])
    return result


def gather(params, root):
    ko = nswap_ko.NswapKo(root)
    return dict(
        module=ko.kernel_module(),
        devices=ko.devices(),
        swaps=ko.swap_areas(),
        server=local_server(params),
        gossip=gossip_table(params["gossip_table_file"], root),
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            server=dict(type="bool", default=True),
            server_address=dict(type="str", default="127.0.0.1"),
            server_port=dict(type="int", default=server_util.proto.DEFAULT_PORT),
            timeout=dict(type="float", default=2.0),
            gossip_table_file=dict(type="str", default="/run/nswap/gossip.json"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 0 < params["timeout"] <= 3600:
        module.fail_json(
            msg="timeout=%s must be more than 0 and at most 3600 seconds" % params["timeout"]
        )
    table_file = params["gossip_table_file"]
    if table_file and not table_file.startswith("/"):
        module.fail_json(
            msg="gossip_table_file=%s must be an absolute path (nswapd's gossip_table_file, "
            "e.g. /run/nswap/gossip.json), or empty to skip the gossip table" % table_file
        )
    if not 0 < params["server_port"] < 65536:
        module.fail_json(msg="server_port=%d must be 1 to 65535" % params["server_port"])
    facts = gather(params, ROOT)
    gossip = facts["gossip"]
    if gossip and gossip["error"]:
        module.warn("gossip table: %s; nswap.gossip has no members" % gossip["error"])
    elif gossip and gossip["stale"]:
        module.warn(
            "gossip table: %s was written %d ms ago, more than %d rounds of %d ms (at least "
            "%d ms): its contents are old; is nswapd hanging? (journalctl -u nswapd)"
            % (gossip["path"], gossip["age_ms"], STALE_ROUNDS, gossip["interval_ms"], STALE_MIN_MS)
        )
    module.exit_json(changed=False, nswap=facts)


if __name__ == "__main__":
    main()
