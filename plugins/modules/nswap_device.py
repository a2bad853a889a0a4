#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nswap_device
short_description: Manage an nswap network swap block device (nswap.ko configfs item)
version_added: 0.1.0
description:
  - Creates, reconfigures and removes a C(/dev/nswapN) block device of the nswap kernel
    module through its configfs interface (C(/sys/kernel/config/nswap/<name>)), setting its
    size, memory servers, connections per server, request timeout and retries, and powers it on.
  - Server host names are resolved on the node (nswap.ko takes IP addresses only), and every
    server that is not connected yet must answer an nswap STATUS request within
    O(probe_timeout) seconds before anything changes.
  - The size and the connections per server can only change, and servers only be removed,
    while the device is powered off.  The module powers it off and on again for that, and
    refuses (changing nothing) while the device is an active swap area.
  - If a change fails half way, the module restores the previous attributes (a device it
    created is removed again) and reports the error.
  - Does not create the swap area itself; use M(nswap.cluster.swap) on the RV(device).
author:
  - nswap developers (@nswap)
requirements:
  - The nswap kernel module loaded (C(modprobe nswap), or the C(nswap.cluster.nswap_kmod)
    role) and configfs mounted at C(/sys/kernel/config); not in check mode.
extends_documentation_fragment:
  - nswap.cluster.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports the configfs writes that would happen in RV(actions).
      - Works on a node where nswap.ko is not loaded yet (never deployed) - the device is
        reported as it would be created (changed, with a diff from nothing), with a warning.
        A server that does not answer the STATUS probe gives a warning instead of an error.
  diff_mode:
    support: full
    details: Shows the device's attributes before and after.
options:
  name:
    description:
      - Name of the configfs item.  An item named V(nswapN) gets C(/dev/nswapN) if that index
        is free, any other name the lowest free index.
    type: str
    default: nswap0
  state:
    description:
      - V(present) makes sure the item exists with the given attributes and is powered on.
      - V(absent) powers the device off and removes the item.  Refused while the device is an
        active swap area (swap it off first, for example with M(nswap.cluster.swap)
        O(nswap.cluster.swap#module:state=inactive)).
    type: str
    choices: [present, absent]
    default: present
  size:
    description:
      - Size of the device in bytes, or a number with a suffix V(K), V(M), V(G) or V(T),
        powers of 1024 - V(512M) is 512 MiB, and V(512MB) and V(512MiB) mean the same;
        fractions are allowed (V(1.5G)).  Parsed with ansible-core's C(human_to_bytes).
      - A non-zero multiple of 4096 bytes, at most 16T.
      - Required to create the device; when not set, an existing device keeps its size.
    type: str
  servers:
    description:
      - Memory servers (nswapd) as V(ADDR:PORT), V([IPV6]:PORT) or V(HOSTNAME:PORT); at most 64.
      - Required with O(state=present).  Servers of the device that are not in the list are
        removed, unless O(keep_other_servers) is set.
    type: list
    elements: str
  keep_other_servers:
    description:
      - Leave the device's servers that are not in O(servers) alone instead of removing
        them - those the node's nswapd added from its gossip table (its C(client_device)).
        O(servers) are still added.
    type: bool
    default: false
  connections_per_server:
    description: TCP connections to each server, V(1) to V(16).  Default of nswap.ko (2).
    type: int
  timeout_ms:
    description: Per-request timeout in milliseconds, V(100) to V(3600000).  Default of
      nswap.ko (10000).
    type: int
  retries:
    description: Reissues of a failed request before it fails, V(0) to V(100).  Default of
      nswap.ko (3).
    type: int
  migration:
    description:
      - Follow pages that servers move between them (UPDATE, docs/protocol.md 11.1), so
        that a server whose cache shrinks can hand its pages to another instead of keeping
        them.  V(false) is nswap.ko's default, because nothing authenticates an UPDATE yet.
      - Changed only while the device is powered off (a power cycle when it is not in use).
      - Not set, the device's setting is left as it is.
    type: bool
  backing:
    description:
      - A local block device for disk fallback (nswap.ko configfs C(backing)) - a page goes
        there when no server has room or none is reachable, and is read back from there;
        new pages go to servers again as soon as one has room.
      - The absolute path of a block device of at least O(size) bytes that nothing else
        uses (no file system, swap area or other nswap device); nswap.ko opens it
        exclusively while the device is powered on.  Its contents are overwritten.
      - V("") for none.  Not set, the device's setting is left as it is.
      - Changed only while the device is powered off (a power cycle when it is not in use).
    type: str
  sweep_interval_s:
    description:
      - Seconds between the device's dead-page sweeps (nswap.ko configfs
        C(sweep_interval_s)) - each tells the servers to drop copies of slots they do not
        hold for the device now (left by lost INVALIDATEs), V(0) to V(86400); V(0) (the
        default of nswap.ko) is off.
      - Changed at any time, without a power cycle.  Not set, left as it is.
    type: int
  probe_timeout:
    description:
      - Seconds to wait for each new server's reply to a STATUS request; V(0) skips the probe.
    type: float
    default: 5
notes:
  - Must run as root (use O(ignore:become=true)).
seealso:
  - module: nswap.cluster.swap
  - name: nswap.ko configfs interface
    description: docs/kmod.md in the collection.
    link: https://github.com/nswap/cluster/blob/main/docs/kmod.md
"""

EXAMPLES = r"""
- name: A 2 GiB nswap device backed by two memory servers
  nswap.cluster.nswap_device:
    name: nswap0
    size: 2G
    servers:
      - 10.77.0.12:7405
      - 10.77.0.13:7405
    timeout_ms: 5000
  register: nswap

- name: Use it as swap before the disk
  nswap.cluster.swap:
    path: "{{ nswap.device }}"
    priority: 100

- name: Remove it (after swapoff)
  nswap.cluster.nswap_device:
    name: nswap0
    state: absent
"""

RETURN = r"""
device:
  description: The block device, or where it would be in check mode; empty when absent, and
    in check mode for an item not named V(nswapN) that does not exist yet.
  returned: always
  type: str
  sample: /dev/nswap0
config:
  description: The device's attributes after the run (in check mode, as they would be).
  returned: when state is present
  type: dict
  sample:
    size: 2147483648
    servers: [10.77.0.12:7405, 10.77.0.13:7405]
    connections_per_server: 2
    timeout_ms: 5000
    retries: 3
    powered: true
servers:
  description: Servers and their connection state as nswap.ko reports them (V(idle),
    V(connecting), V(up)).
  returned: when state is present
  type: list
  elements: dict
  sample: [{server: 10.77.0.12:7405, state: up}]
counters:
  description: The device's counters from C(/sys/block/nswapN/nswap/) (puts, gets, errors...),
    as M(nswap.cluster.nswap_info) returns them; C(latency_hist) as C([lower_us, count]) pairs.
  returned: when the device exists after the run (not in check mode before it exists)
  type: dict
  sample: {puts: 1024, gets: 512, errors: 0, latency_hist: [[0, 0], [2, 17]]}
actions:
  description: The configfs changes done, or in check mode the ones that would be done.
  returned: always
  type: list
  elements: str
  sample: ["mkdir /sys/kernel/config/nswap/nswap0", "echo 2G > .../nswap0/size"]
"""

import errno
import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_device as util
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_ko, nswap_protocol

# The directory that stands for "/"; module-level so that tests can point it elsewhere.
ROOT = "/"


# The configfs operations, module-level so that tests can simulate nswap.ko.
def write_attr(path, text):
    with open(path, "w") as handle:
        handle.write(text + "\n")


def make_item(path):
    os.mkdir(path)


def remove_item(path):
    os.rmdir(path)


def probe_server(address, port, timeout):
    """Raise unless an nswapd at address:port answers STATUS within timeout seconds."""
    with nswap_protocol.Client(address, port, timeout=timeout) as client:
        client.status()


def backing_device_size(path):
    """Bytes of the block device at path; ValueError saying what is wrong with it."""
    try:
        if not stat.S_ISBLK(os.stat(path).st_mode):
            raise ValueError("backing %s is not a block device" % path)
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ValueError("backing %s: %s" % (path, os.strerror(exc.errno)))
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


class DeviceError(Exception):
    pass


class NswapDevice(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.name = self.params["name"]
        self.ko = nswap_ko.NswapKo(ROOT)
        self.item = self.ko.item_path(self.name)
        self.actions = []

    # --- reading ----------------------------------------------------------------

    def read(self):
        """The item's attributes now (util.config_of), or None when it does not exist."""
        return util.config_of(self.ko.item(self.name))

    def active_swaps(self):
        return [area["name"] for area in self.ko.swap_areas()]

    # --- changing ---------------------------------------------------------------

    def _write(self, attr, value):
        path = os.path.join(self.item, attr)
        self.actions.append("echo %s > %s" % (value, path))
        if self.check_mode:
            return
        try:
            write_attr(path, value)
        except OSError as exc:
            if (
                exc.errno == errno.EEXIST
                and attr == "servers"
                and value.startswith("add ")
                and self.wanted.get("keep_other_servers")
            ):
                # the node's nswapd added it from its gossip table meanwhile: it is there
                return
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            hint = "see the kernel log (dmesg | grep nswap) for the reason"
            if exc.errno == errno.EBUSY and attr == "power":
                hint = "the device is open (an active swap area?); run swapoff first"
            raise DeviceError(
                "nswap.ko refused '%s' for %s/%s: %s; %s" % (value, self.name, attr, why, hint)
            )

    def _mkdir(self):
        self.actions.append("mkdir %s" % self.item)
        if not self.check_mode:
            make_item(self.item)

    def _rmdir(self):
        self.actions.append("rmdir %s" % self.item)
        if not self.check_mode:
            try:
                remove_item(self.item)
            except OSError as exc:
                raise DeviceError(
                    "cannot remove %s: %s; power it off and swap it off first"
                    % (self.item, os.strerror(exc.errno))
                )

    # --- the run ----------------------------------------------------------------

    def validate(self):
        try:
            util.check_name(self.name)
            if self.params["state"] == "absent":
                return None
            servers = self.params["servers"]
            if not servers:
                raise ValueError(
                    "servers is empty; state=present needs at least one memory server "
                    "(ADDR:PORT of an nswapd)"
                )
            if len(servers) > util.MAX_SERVERS:
                raise ValueError(
                    "servers has %d entries; nswap takes at most %d per device"
                    % (len(servers), util.MAX_SERVERS)
                )
            for server in servers:
                nswap_ko.split_server(server)
            wanted = util.wanted_config(self.params, [])
            resolved = []
            for server in servers:
                address = util.resolve_server(server)
                if address not in resolved:
                    resolved.append(address)
            wanted["servers"] = resolved
            return wanted
        except ValueError as exc:
            raise DeviceError(str(exc))

    def probe(self, current):
        timeout = self.params["probe_timeout"]
        states = (current or {}).get("states", {})
        for server in self.wanted["servers"]:
            if timeout <= 0 or states.get(server) == "up":
                continue
            address, port = nswap_ko.split_server(server)
            try:
                probe_server(address, port, timeout)
            except Exception as exc:  # any failure means the server is unusable
                message = (
                    "server %s does not answer an nswap STATUS request within %gs (%s); "
                    "check that nswapd runs there (systemctl status nswapd) and listens on "
                    "that address and port, or remove it from servers"
                    % (server, timeout, exc or type(exc).__name__)
                )
                if not self.check_mode:
                    raise DeviceError(message)
                # check mode on a cluster not deployed yet: nswapd may come with the run
                self.module.warn("check mode: %s; the real run fails unless it answers" % message)

    def check_backing_device(self, current):
        """A new backing device must be a block device of at least the device's size:
        refused here, before anything changes, rather than by power on."""
        path = self.wanted.get("backing")
        if not path or path == (current or {}).get("backing"):
            return
        size = self.wanted["size"] or (current or {}).get("size") or 0
        try:
            have = backing_device_size(path)
            if have < size:
                raise ValueError(
                    "backing %s has %d bytes, fewer than the device's %d; use a larger "
                    "block device or a smaller size" % (path, have, size)
                )
        except ValueError as exc:
            message = '%s (fix backing, or set it to "" for none)' % exc
            if not self.check_mode:
                raise DeviceError(message)
            self.module.warn("check mode: %s; the real run fails unless it is fixed" % message)

    def present(self, current):
        if current is None and self.wanted["size"] is None:
            raise DeviceError("size is required to create %s; set size, e.g. 1G" % self.name)
        self.probe(current)
        self.check_backing_device(current)
        writes, offline = util.plan(current, self.wanted)
        device = self.device_of(current)
        if offline and device in self.active_swaps():
            changing = sorted(set(attr for attr, _value in writes))
            raise DeviceError(
                "changing %s of %s needs the device powered off, but %s is an active swap "
                "area; swap it off first (nswap.cluster.swap state=inactive)"
                % (", ".join(changing), self.name, device)
            )
        if current is None:
            self._mkdir()
        try:
            if offline:
                self._write("power", "0")
            for attr, value in writes:
                self._write(attr, value)
            if current is None or offline or not current["powered"]:
                self._write("power", "1")
        except DeviceError:
            if not self.check_mode:
                self.restore(current)
            raise
        return bool(self.actions)

    def restore(self, current):
        """Undo a half-done change: remove a new item, else put the old attributes back."""
        try:
            if os.path.isfile(os.path.join(self.item, "power")):
                write_attr(os.path.join(self.item, "power"), "0")
            if current is None:
                remove_item(self.item)
                return
            now = self.read()
            writes, _offline = util.plan(now, dict(current, powered=False))
            for attr, value in writes:
                write_attr(os.path.join(self.item, attr), value)
            if current["powered"]:
                write_attr(os.path.join(self.item, "power"), "1")
        except (OSError, ValueError) as exc:
            self.module.warn("could not restore %s after the failure: %s" % (self.name, exc))

    def absent(self, current):
        if current is None:
            return False
        device = self.device_of(current)
        if current["powered"] and device in self.active_swaps():
            raise DeviceError(
                "%s is an active swap area; swap it off first (swapoff %s, or "
                "nswap.cluster.swap state=inactive), then remove the device" % (device, device)
            )
        if current["powered"]:
            self._write("power", "0")
        self._rmdir()
        return True

    def device_of(self, current):
        if current is not None and isinstance(current.get("index"), int):
            return "/dev/nswap%d" % current["index"]
        match = self.name[5:] if self.name.startswith("nswap") else ""
        return "/dev/nswap%s" % match if match.isdigit() else ""

    def run(self):
        self.wanted = self.validate()
        state = self.params["state"]
        unusable = self.ko.unusable()
        if unusable is not None:
            return self.run_without_nswap_ko(state, unusable)
        current = self.read()
        before = self.visible(current)
        if state == "absent":
            changed = self.absent(current)
            result = dict(changed=changed, device="" if changed else self.device_of(current))
            after = {}
        else:
            changed = self.present(current)
            after = self.read() if not self.check_mode else self.predicted(current)
            result = self.present_result(changed, after)
            after = result["config"]
        return self.with_diff(result, before, after)

    def run_without_nswap_ko(self, state, unusable):
        """No configfs: nothing to remove; in check mode (a node not deployed yet) what
        would be created once nswap.ko is loaded; else an error that names the fix."""
        if state == "absent":
            return dict(changed=False, device="")
        if not self.check_mode:
            raise DeviceError("cannot create %s: %s" % (self.name, unusable))
        self.module.warn(
            "check mode: %s; reporting %s as it would be created" % (unusable, self.name)
        )
        self.present(None)
        result = self.present_result(True, self.predicted(None))
        return self.with_diff(result, {}, result["config"])

    def present_result(self, changed, after):
        result = dict(changed=changed, device=self.device_of(after), config=self.visible(after))
        result["servers"] = [
            dict(server=server, state=after.get("states", {}).get(server, "idle"))
            for server in after["servers"]
        ]
        counters = self.ko.counters(after.get("index"))
        if counters:
            result["counters"] = counters
        return result

    def with_diff(self, result, before, after):
        if self.module._diff:
            result["diff"] = dict(
                before_header=self.item, after_header=self.item, before=before, after=after
            )
        return result

    def predicted(self, current):
        after = dict(current or dict(powered=False, states={}))
        for name in util.SETTINGS:
            if self.wanted.get(name) is not None:
                after[name] = self.wanted[name]
        kept = (current or {}).get("servers", []) if self.wanted["keep_other_servers"] else []
        after["servers"] = kept + [s for s in self.wanted["servers"] if s not in kept]
        after["powered"] = True
        return after

    @staticmethod
    def visible(attrs):
        if attrs is None:
            return {}
        keys = util.SETTINGS[:1] + ("servers",) + util.SETTINGS[1:] + ("powered",)
        return dict((key, attrs[key]) for key in keys if key in attrs)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", default="nswap0"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            size=dict(type="str"),
            servers=dict(type="list", elements="str"),
            keep_other_servers=dict(type="bool", default=False),
            connections_per_server=dict(type="int"),
            timeout_ms=dict(type="int"),
            retries=dict(type="int"),
            migration=dict(type="bool"),
            backing=dict(type="str"),
            sweep_interval_s=dict(type="int"),
            probe_timeout=dict(type="float", default=5.0),
        ),
        supports_check_mode=True,
    )
    device = NswapDevice(module)
    try:
        result = device.run()
    except (DeviceError, OSError) as exc:
        module.fail_json(msg=str(exc), actions=device.actions)
    module.exit_json(actions=device.actions, **result)


if __name__ == "__main__":
    main()
