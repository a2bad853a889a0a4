#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: swap
short_description: Manage a swap area on a block device or in a file, with priority and discard
version_added: 0.1.0
description:
  - Creates, activates, deactivates and removes a Linux swap area on a block device or in a
    file, sets its priority and discard policy, and optionally keeps its line in
    C(/etc/fstab) so that the state survives a reboot.
  - Creates swap files of a given size (with C(fallocate), or C(dd) where the filesystem does
    not support C(fallocate)), owned by root with mode C(0600).
  - Never overwrites an existing filesystem, partition table or other signature unless
    O(force=true).
  - Changing the priority, discard policy, label or UUID of an active swap area requires
    swapping it off and on again.  Before any swapoff the module checks that the pages in use
    on the area fit in C(MemAvailable) plus the free space of the other active swap areas,
    with a margin of 10% plus 64 MiB, and fails without changing anything when they do not.
  - If swapoff fails, nothing is changed.  If swapon with the new settings fails, the module
    re-enables the area with its previous settings and reports both errors.
author:
  - nswap developers (@nswap)
requirements:
  - util-linux (C(swapon), C(swapoff), C(mkswap), C(swaplabel), C(blkid), C(findfs),
    C(wipefs), C(fallocate)); C(dd) from coreutils where C(fallocate) is not supported.
extends_documentation_fragment:
  - nswap.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reports the commands that would run in RV(actions).
  diff_mode:
    support: full
    details: Shows the swap area's state before and after and, with O(persistent=true), the
      C(/etc/fstab) text diff.
options:
  path:
    description:
      - The swap area, a block device (C(/dev/sdb2), C(/dev/disk/by-id/...), C(/dev/mapper/...))
        or a regular file (C(/swapfile)).  Symbolic links are followed.
      - Or an existing block device named by V(LABEL=...), V(UUID=...), V(PARTLABEL=...) or
        V(PARTUUID=...), resolved with C(blkid -t) or C(findfs).  Such a name is also what the
        C(/etc/fstab) line uses.
      - Anything that is not under C(/dev), does not exist and has O(size) set is created as a
        swap file.
    type: str
    required: true
    aliases: [name]
  state:
    description:
      - V(present) makes sure the area has a swap signature (running C(mkswap) where it has
        none) and leaves its activation alone.
      - V(active) also makes sure it is in use (C(swapon)) with O(priority) and O(discard).
      - V(inactive) also makes sure it is not in use (C(swapoff)).
      - V(absent) swaps the area off and removes it; the swap signature of a block device is
        erased with C(wipefs), a swap file is deleted.  Devices and files without a swap
        signature are left alone.
    type: str
    choices: [present, active, inactive, absent]
    default: active
  priority:
    description:
      - Swap priority, V(0) to V(32767); areas with a higher priority are used first.
      - V(-1) means the automatic negative priority that the kernel gives areas activated
        without one.
      - When not set, an active area keeps its priority and a new one gets an automatic one.
    type: int
  discard:
    description:
      - Discard (TRIM) policy used when the area is activated (C(swapon --discard)).
      - V(once) discards the whole area once at swapon, V(pages) discards freed pages,
        V(both) does both, V(none) neither.
      - When not set, an active area keeps its policy and a new one gets none.
      - The kernel does not report the policy of an active area.  The module remembers the
        one it used (in C(/run), until reboot); for areas it did not activate it assumes the
        options of their C(/etc/fstab) line, and where there is none it re-activates the area
        once to apply O(discard).
    type: str
    choices: [none, once, pages, both]
  size:
    description:
      - Size of a swap file, in bytes or with a suffix V(K), V(M), V(G) or V(T) (powers of
        1024), for example V(2G).
      - A missing file is created with this size.  An existing file of another size is an
        error unless O(force=true), which recreates it (swapping it off first if needed).
      - Only for files; the size of a block device is the size of the device.
    type: str
  label:
    description:
      - Label of the swap area (C(mkswap -L), at most 16 bytes).  An existing swap area gets
        it with C(swaplabel).  V("") removes the label.
    type: str
  uuid:
    description:
      - UUID of the swap area (C(mkswap -U)).  An existing swap area gets it with
        C(swaplabel).
    type: str
  force:
    description:
      - Allow C(mkswap) to overwrite an existing signature (a filesystem, a partition table,
        anything C(blkid) recognizes) and allow recreating a swap file of another O(size).
      - B(Destroys the data) on the device or in the file.
    type: bool
    default: false
  persistent:
    description:
      - Also manage the area's line in C(/etc/fstab) (one line
        C(<path> none swap sw[,pri=N][,discard[=once|pages]] 0 0)), so that the state
        survives a reboot.
      - With O(state=active) the line is added or updated to give the area's priority and
        discard policy after the run; options other than C(pri) and C(discard) on an
        existing line (such as C(nofail)) are kept.  With O(state=inactive)
        and O(state=absent) the lines for this area are removed.  O(state=present) leaves
        C(/etc/fstab) alone.
      - Lines for the area are found by path, by a path that resolves to the same device,
        or by the area's label or UUID.  The rest of the file stays byte for byte the same;
        the new file replaces the old one atomically.
    type: bool
    default: false
notes:
  - Must run as root (use O(ignore:become=true)).
  - On btrfs a swap file must be created without copy-on-write; create it yourself
    (C(btrfs filesystem mkswapfile)) and point O(path) at it.
seealso:
  - name: swapon(8)
    description: Enable/disable devices and files for paging and swapping.
    link: https://man7.org/linux/man-pages/man8/swapon.8.html
  - name: mkswap(8)
    description: Set up a Linux swap area.
    link: https://man7.org/linux/man-pages/man8/mkswap.8.html
"""

EXAMPLES = r"""
- name: A 2 GiB swap file with priority 10, active now and after reboots
  nswap.cluster.swap:
    path: /swapfile
    size: 2G
    priority: 10
    persistent: true

- name: Swap on an SSD partition, discarding freed pages, used before other swap
  nswap.cluster.swap:
    path: /dev/disk/by-id/nvme-Example_SSD_1234-part3
    priority: 100
    discard: pages
    label: fastswap
    persistent: true

- name: Use the swap area labelled fastswap (fstab line with LABEL=fastswap)
  nswap.cluster.swap:
    path: LABEL=fastswap
    priority: 100
    persistent: true

- name: Make swap on a partition that holds an old ext4 filesystem (destroys it)
  nswap.cluster.swap:
    path: /dev/vdb
    force: true

- name: Stop using a swap area (fails without change if its pages do not fit elsewhere)
  nswap.cluster.swap:
    path: /dev/vdb
    state: inactive
    persistent: true

- name: Remove a swap file and its fstab line
  nswap.cluster.swap:
    path: /swapfile
    state: absent
    persistent: true
"""

RETURN = r"""
path:
  description: The swap area's real path (symbolic links and LABEL=/UUID= names resolved).
  returned: always
  type: str
  sample: /dev/nvme0n1p3
swaps:
  description:
    - The active swap areas after the run (in check mode, as they are now).
    - Sizes in bytes.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Path of the area as the kernel reports it.
      type: str
    type:
      description: V(partition) or V(file).
      type: str
    size:
      description: Usable size in bytes.
      type: int
    used:
      description: Bytes in use.
      type: int
    priority:
      description: Priority.
      type: int
  sample:
    - {name: /dev/nvme0n1p3, type: partition, size: 8589930496, used: 0, priority: 100}
actions:
  description:
    - The commands run, or in check mode the ones that would run, in order.  Changes done
      without a command (creating, chmod, chown or deleting a swap file) appear as the
      equivalent command.
  returned: always
  type: list
  elements: str
  sample: ["swapoff /dev/vdb", "swapon -p 10 --discard=pages /dev/vdb"]
"""

import json
import os
import shlex
import stat
import tempfile
import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nswap.cluster.plugins.module_utils import swap as util

# System files, module-level so that tests can point them elsewhere.
FSTAB = "/etc/fstab"
PROC_SWAPS = "/proc/swaps"
PROC_MEMINFO = "/proc/meminfo"
# Discard policy used at swapon, per area (the kernel does not report it); /run is per boot.
DISCARD_RECORD = "/run/ansible-swap-discard.json"
SWAPFILE_OWNER = (0, 0)
SWAPFILE_MODE = 0o600
READ_SWAPS = ["--show=NAME,TYPE,SIZE,USED,PRIO", "--bytes", "--noheadings", "--raw"]


def file_kind(path):
    """ "block", "file", "missing" or "other" for path, following symbolic links."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    if stat.S_ISBLK(st.st_mode):
        return "block"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


def read_text(path):
    """Text of path (undecodable bytes kept as surrogates), or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def _options_field(line):
    fields = (line or "").split()
    return fields[3] if len(fields) > 3 else ""


def _command(argv):
    return " ".join(shlex.quote(arg) for arg in argv)


class SwapError(Exception):
    pass


class SwapArea(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.actions = []
        self.fstab_diff = None
        self.toggled = False
        self._bins = {}

    # --- commands -------------------------------------------------------------

    def bin(self, name, required=True):
        if name not in self._bins:
            self._bins[name] = self.module.get_bin_path(name, required=required)
        return self._bins[name]

    def query(self, argv):
        """Run a command that changes nothing (also in check mode)."""
        return self.module.run_command(argv, expand_user_and_vars=False)

    def change(self, argv):
        """Run a command that changes the system; in check mode only record it."""
        self.actions.append(_command(argv))
        if self.check_mode:
            return 0, "", ""
        return self.module.run_command(argv, expand_user_and_vars=False)

    def must(self, argv, what):
        rc, out, err = self.change(argv)
        if rc != 0:
            raise SwapError("%s failed (rc=%d): %s" % (what, rc, (err or out).strip()))

    # --- input ----------------------------------------------------------------

    def validate(self):
        params = self.params
        if os.geteuid() != 0:
            raise SwapError(
                "nswap.cluster.swap must run as root (swapon, mkswap, blkid -p and /etc/fstab "
                "need it); run the task with become: true"
            )
        try:
            util.check_priority(params["priority"])
            self.size = None if params["size"] is None else util.parse_size(params["size"])
        except ValueError as exc:
            raise SwapError(str(exc))
        page = os.sysconf("SC_PAGE_SIZE")
        if self.size is not None and self.size < 10 * page:
            raise SwapError(
                "size=%s is too small; a swap area needs at least 10 pages (%d bytes)"
                % (params["size"], 10 * page)
            )
        label = params["label"]
        if label is not None and len(label.encode("utf-8")) > util.MAX_LABEL_BYTES:
            raise SwapError(
                "label=%r is %d bytes long; a swap label holds at most %d bytes"
                % (label, len(label.encode("utf-8")), util.MAX_LABEL_BYTES)
            )
        self.uuid = None
        if params["uuid"] is not None:
            try:
                self.uuid = str(uuid.UUID(params["uuid"]))
            except ValueError:
                raise SwapError(
                    "uuid=%r is not a UUID; use the form 0b3e2c4a-1d2f-4a5b-9c8d-7e6f5a4b3c2d "
                    "(uuidgen makes one)" % params["uuid"]
                )
        path = params["path"]
        self.tag = util.tag_spec(path)
        if self.tag is None and not os.path.isabs(path):
            raise SwapError(
                "path=%r is relative; give an absolute path, or LABEL=..., UUID=..." % path
            )
        if self.tag and self.size is not None:
            raise SwapError(
                "size applies to swap files only; %s names a block device: remove size" % path
            )
        for tag, value in (("LABEL", label), ("UUID", self.uuid)):
            if self.tag and self.tag[0] == tag and value is not None:
                if value != self.tag[1] and (tag == "LABEL" or value != self.tag[1].lower()):
                    raise SwapError(
                        "%s=%s would change the %s that path=%s selects, so the next run "
                        "would not find the area; use the device path in path"
                        % (tag.lower(), value, tag, path)
                    )

    def resolve(self):
        """Set device (what commands get), real (its real path) and kind."""
        path = self.params["path"]
        self.device = path
        if self.tag:
            self.device = self.find_tagged(path)
            if self.device is None:
                if self.params["state"] != "absent":
                    raise SwapError(
                        "%s does not match any block device (blkid -t and findfs found none); "
                        "check it with blkid, or give the device path" % path
                    )
        self.real = os.path.realpath(self.device) if self.device else None
        self.kind = file_kind(self.device) if self.device else "missing"
        if self.kind == "other":
            raise SwapError(
                "%s is neither a block device nor a regular file; point path at a block "
                "device or a swap file" % path
            )
        if self.kind == "block" and self.size is not None:
            raise SwapError(
                "size applies to swap files only; %s is a block device (its size is fixed): "
                "remove size" % path
            )
        if self.kind != "missing" or self.params["state"] == "absent":
            return
        if os.path.islink(self.device):
            raise SwapError(
                "%s is a symbolic link to %s, which does not exist; fix the link or point "
                "path at the target" % (path, os.path.realpath(self.device))
            )
        if self.real.startswith("/dev/"):
            raise SwapError(
                "block device %s does not exist; check the path (ls -l /dev/disk/by-id/)" % path
            )
        if self.size is None:
            raise SwapError(
                "%s does not exist; set size to create a swap file there, or point path at "
                "an existing block device" % path
            )
        if not os.path.isdir(os.path.dirname(self.real)):
            raise SwapError(
                "cannot create swap file %s: directory %s does not exist; create it first"
                % (path, os.path.dirname(self.real))
            )

    def find_tagged(self, spec):
        rc, out, _err = self.query([self.bin("blkid"), "-t", spec, "-o", "device"])
        devices = out.split() if rc == 0 else []
        if not devices:
            rc, out, _err = self.query([self.bin("findfs"), spec])
            devices = out.split() if rc == 0 else []
        return devices[0] if devices else None

    # --- current state --------------------------------------------------------

    def read_swaps(self):
        rc, out, _err = self.query([self.bin("swapon")] + READ_SWAPS)
        if rc == 0:
            return util.parse_swapon_show(out)
        return util.parse_proc_swaps(read_text(PROC_SWAPS) or "")

    def find_active(self, swaps):
        if not self.real:
            return None
        for swap in swaps:
            if swap["name"] == self.real or os.path.realpath(swap["name"]) == self.real:
                return swap
        return None

    def read_signature(self):
        """blkid's idea of the area: {} when it has no signature."""
        if self.kind not in ("block", "file"):
            return {}
        rc, out, err = self.query([self.bin("blkid"), "-p", "-o", "export", self.device])
        if rc == 2:
            return {}
        if rc == 8:
            return {"TYPE": "ambivalent (several signatures)"}
        if rc != 0:
            raise SwapError("blkid -p %s failed (rc=%d): %s" % (self.device, rc, err.strip()))
        sig = util.parse_blkid_export(out)
        if "TYPE" not in sig and "PTTYPE" in sig:
            sig["TYPE"] = "%s partition table" % sig["PTTYPE"]
        return sig

    def read_records(self):
        try:
            records = json.loads(read_text(DISCARD_RECORD) or "{}")
        except ValueError:
            return {}
        return records if isinstance(records, dict) else {}

    def fstab_matches(self, spec):
        """Whether an fstab swap line with this spec names our area."""
        if spec == self.params["path"] or (self.device and spec == self.device):
            return True
        tag = util.tag_spec(spec)
        if tag:
            key = {"PARTLABEL": "PART_ENTRY_NAME", "PARTUUID": "PART_ENTRY_UUID"}.get(
                tag[0], tag[0]
            )
            value = self.sig_before.get(key)
            return value is not None and value.lower() == tag[1].lower()
        return self.real is not None and os.path.realpath(spec) == self.real

    def snapshot(self):
        return dict(
            path=self.real,
            exists=self.exists,
            signature=self.sig.get("TYPE"),
            label=self.sig.get("LABEL"),
            uuid=self.sig.get("UUID"),
            active=self.active is not None,
            priority=self.active["priority"] if self.active else None,
            discard=(self.discard or "unknown") if self.active else None,
            fstab=util.find_swap_line(self.fstab_text, self.fstab_matches),
        )

    # --- the run --------------------------------------------------------------

    def run(self):
        self.validate()
        self.resolve()
        params = self.params
        state = params["state"]
        self.swaps = self.read_swaps()
        self.active = self.find_active(self.swaps)
        self.exists = self.kind in ("block", "file")
        self.sig = self.sig_before = self.read_signature()
        self.fstab_text = read_text(FSTAB)
        records = self.read_records()
        self.discard = None
        if self.active:
            if self.real in records:
                self.discard = records[self.real]
            else:
                line = util.find_swap_line(self.fstab_text, self.fstab_matches)
                if line:
                    self.discard = util.swap_options(_options_field(line))[1]
        before = self.snapshot()

        try:
            if state == "absent":
                self.make_absent()
            else:
                self.make_present_active_inactive(state)
            if params["persistent"]:
                self.update_fstab(state)
        finally:
            if self.toggled and not self.check_mode:
                self.swaps = self.read_swaps()
                self.active = self.find_active(self.swaps)
                self.save_record(records)
        if not params["persistent"] and state in ("inactive", "absent") and before["fstab"]:
            self.module.warn(
                "%s still has a line in %s (%s); set persistent: true to remove it"
                % (params["path"], FSTAB, before["fstab"])
            )
        if self.actions and not self.check_mode:
            self.swaps = self.read_swaps()
            self.active = self.find_active(self.swaps)
            if self.exists:
                self.sig = self.read_signature()
        after = self.snapshot()
        diff = [dict(before_header="swap area", after_header="swap area")]
        diff[0].update(before=before, after=after)
        if self.fstab_diff:
            diff.append(self.fstab_diff)
        changed = bool(self.actions) or self.fstab_diff is not None
        return dict(changed=changed, path=self.real or params["path"], swaps=self.swaps, diff=diff)

    def make_present_active_inactive(self, state):
        params = self.params
        sig_type = self.sig.get("TYPE")
        is_swap = sig_type in util.SWAP_TYPES
        recreate = False
        if self.kind == "file" and self.size is not None:
            current = os.stat(self.device).st_size
            if current != self.size:
                if not params["force"]:
                    raise SwapError(
                        "%s is %d bytes, not size=%s (%d bytes); set force: true to recreate "
                        "it with the new size (its contents are lost), or change size"
                        % (params["path"], current, params["size"], self.size)
                    )
                recreate = True
        if self.exists and not recreate and sig_type and not is_swap and not params["force"]:
            raise SwapError(
                "%s holds an existing %s signature (blkid -p); refusing to overwrite it with "
                "swap. Check with wipefs --no-act %s, and set force: true to destroy it"
                % (params["path"], sig_type, self.device)
            )
        mkswap = not self.exists or recreate or not is_swap
        relabel = not mkswap and (
            (params["label"] is not None and params["label"] != self.sig.get("LABEL", ""))
            or (self.uuid is not None and self.uuid != self.sig.get("UUID", "").lower())
        )
        restart = bool(self.active) and (recreate or relabel)
        if self.active and state == "active":
            restart = restart or not (
                util.priority_matches(params["priority"], self.active["priority"])
                and (params["discard"] is None or params["discard"] == self.discard)
            )
        swapoff = bool(self.active) and (restart or state == "inactive")
        swapon = (restart and state != "inactive") or (state == "active" and not self.active)
        old = self.current_settings()
        wanted = old
        if state == "active":
            wanted = (
                old[0] if params["priority"] is None else params["priority"],
                old[1] if params["discard"] is None else params["discard"],
            )

        if swapoff:
            self.check_swapoff()
            self.swapoff()
        if recreate:
            self.remove_file()
        if not self.exists or recreate:
            self.create_file()
        if self.kind == "file" or not self.exists:
            self.secure_file()
        if mkswap:
            self.mkswap(keep=self.sig_before if recreate and is_swap else {})
        elif relabel:
            self.swaplabel()
        if swapon:
            self.swapon(wanted, restore=old if swapoff else None)

    def current_settings(self):
        """(priority, discard) to activate the area with as it is now (None: default)."""
        if not self.active:
            return None, None
        priority = self.active["priority"]
        return (priority if priority >= 0 else None), self.discard

    def make_absent(self):
        is_swap = self.sig.get("TYPE") in util.SWAP_TYPES or self.active is not None
        if not self.exists or not is_swap:
            if self.exists and self.kind == "file":
                self.module.warn(
                    "%s has no swap signature, so it is not a swap area; left it alone"
                    % self.params["path"]
                )
            return
        if self.active:
            self.check_swapoff()
            self.swapoff()
        if self.kind == "file":
            self.remove_file()
        else:
            self.must(
                [self.bin("wipefs"), "-a", "-t", ",".join(util.SWAP_TYPES), self.device], "wipefs"
            )
            self.sig = {}

    # --- steps ----------------------------------------------------------------

    def check_swapoff(self):
        meminfo = util.parse_meminfo(read_text(PROC_MEMINFO) or "")
        ok, needed, available = util.swapoff_check(
            self.active, self.swaps, util.mem_available(meminfo)
        )
        if not ok:
            raise SwapError(
                util.swapoff_refusal(self.device, needed, available) + ". Nothing was changed."
            )

    def swapoff(self):
        rc, out, err = self.change([self.bin("swapoff"), self.device])
        if rc != 0:
            raise SwapError(
                "swapoff %s failed (rc=%d): %s; the area is still active, nothing was changed"
                % (self.device, rc, (err or out).strip())
            )
        self.active = None
        self.discard = None
        self.toggled = True

    def swapon_argv(self, priority, discard):
        argv = [self.bin("swapon")]
        if priority is not None and priority >= 0:
            argv += ["-p", str(priority)]
        if discard == "both":
            argv.append("--discard")
        elif discard in ("once", "pages"):
            argv.append("--discard=" + discard)
        return argv + [self.device]

    def swapon(self, wanted, restore=None):
        priority, discard = wanted
        rc, out, err = self.change(self.swapon_argv(priority, discard))
        if rc == 0:
            self.active = self.predicted_swap(priority)
            self.discard = discard or "none"
            self.toggled = True
            return
        msg = "swapon %s failed (rc=%d): %s" % (self.device, rc, (err or out).strip())
        if restore is None:
            raise SwapError(msg)
        rc2, out2, err2 = self.change(self.swapon_argv(*restore))
        if rc2 == 0:
            self.active = self.predicted_swap(restore[0])
            self.discard = restore[1] or "none"
            self.toggled = True
            raise SwapError(msg + "; re-enabled it with its previous settings")
        raise SwapError(
            msg + "; re-enabling it with its previous settings failed too (rc=%d): %s; "
            "%s is now inactive" % (rc2, (err2 or out2).strip(), self.device)
        )

    def predicted_swap(self, priority):
        """The area's row in the swap table, as far as it can be known before reading it."""
        size = 0
        if self.kind == "file":
            size = self.size if self.check_mode and self.size else os.stat(self.device).st_size
        return dict(
            name=self.real,
            type="file" if self.kind in ("file", "missing") else "partition",
            size=size,
            used=0,
            priority=priority if priority is not None and priority >= 0 else -2,
        )

    def remove_file(self):
        self.actions.append(_command(["rm", "-f", self.device]))
        if not self.check_mode:
            os.remove(self.device)
        self.exists = False
        self.sig = {}

    def create_file(self):
        self.actions.append(_command(["install", "-m", "0600", "/dev/null", self.device]))
        if not self.check_mode:
            os.close(os.open(self.device, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SWAPFILE_MODE))
        self.exists = True
        self.kind = "file"
        fallocate = self.bin("fallocate", required=False)
        if fallocate:
            rc, out, err = self.change([fallocate, "-l", str(self.size), self.device])
            if rc == 0:
                return
            if "not supported" not in (err + out).lower():
                self.cleanup_file()
                raise SwapError(
                    "fallocate -l %d %s failed (rc=%d): %s"
                    % (self.size, self.device, rc, (err or out).strip())
                )
        argv = [self.bin("dd"), "if=/dev/zero", "of=" + self.device, "bs=1M"]
        argv += ["count=%d" % self.size, "iflag=count_bytes", "status=none"]
        rc, out, err = self.change(argv)
        if rc != 0:
            self.cleanup_file()
            raise SwapError(
                "creating %s with dd failed (rc=%d): %s" % (self.device, rc, (err or out).strip())
            )

    def cleanup_file(self):
        try:
            os.remove(self.device)
        except OSError:
            pass

    def secure_file(self):
        """Swap files must be root's and mode 0600 (others could read swapped-out memory)."""
        st = None if self.check_mode and not os.path.exists(self.device) else os.stat(self.device)
        if st is None:
            return
        if stat.S_IMODE(st.st_mode) != SWAPFILE_MODE:
            self.actions.append(_command(["chmod", "%04o" % SWAPFILE_MODE, self.device]))
            if not self.check_mode:
                os.chmod(self.device, SWAPFILE_MODE)
        if (st.st_uid, st.st_gid) != SWAPFILE_OWNER:
            self.actions.append(_command(["chown", "%d:%d" % SWAPFILE_OWNER, self.device]))
            if not self.check_mode:
                os.chown(self.device, *SWAPFILE_OWNER)

    def mkswap(self, keep):
        label = self.params["label"] if self.params["label"] is not None else keep.get("LABEL")
        uuid_ = self.uuid or keep.get("UUID")
        argv = [self.bin("mkswap")]
        if self.params["force"]:
            argv.append("-f")
        if label:
            argv += ["-L", label]
        if uuid_:
            argv += ["-U", uuid_]
        self.must(argv + [self.device], "mkswap")
        self.sig = dict(TYPE="swap", LABEL=label, UUID=uuid_ or "(new)")

    def swaplabel(self):
        argv = [self.bin("swaplabel")]
        if self.params["label"] is not None:
            argv += ["-L", self.params["label"]]
        if self.uuid is not None:
            argv += ["-U", self.uuid]
        self.must(argv + [self.device], "swaplabel")
        self.sig = dict(self.sig)
        if self.params["label"] is not None:
            self.sig["LABEL"] = self.params["label"]
        if self.uuid is not None:
            self.sig["UUID"] = self.uuid

    def update_fstab(self, state):
        if state == "present":
            return
        text = self.fstab_text or ""
        new_line = None
        if state == "active":
            line = util.find_swap_line(text, self.fstab_matches)
            # the line describes the area as it is now active (automatic priorities and
            # options not managed here stay as they are); an unknown discard stays too
            _priority, discard, extra = util.swap_options(_options_field(line))
            priority = self.active["priority"]
            discard = discard if self.discard is None else self.discard
            new_line = util.render_swap_line(self.params["path"], priority, discard, extra)
        new_text = util.update_fstab(text, self.fstab_matches, new_line)
        if new_text == text:
            return
        self.fstab_diff = dict(before_header=FSTAB, after_header=FSTAB, before=text, after=new_text)
        self.fstab_text = new_text
        if not self.check_mode:
            self.write_atomic(FSTAB, new_text, 0o644)

    def write_atomic(self, path, text, mode):
        fd, tmp = tempfile.mkstemp(prefix=".ansible-swap.", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8", "surrogateescape"))
            os.chmod(tmp, mode)
            self.module.atomic_move(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def save_record(self, records):
        live = set(swap["name"] for swap in self.swaps)
        records = dict((name, disc) for name, disc in records.items() if name in live)
        if self.active:
            records[self.real] = self.discard
        else:
            records.pop(self.real, None)
        if os.path.isdir(os.path.dirname(DISCARD_RECORD)):
            self.write_atomic(DISCARD_RECORD, json.dumps(records, sort_keys=True) + "\n", 0o600)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="str", required=True, aliases=["name"]),
            state=dict(
                type="str", choices=["present", "active", "inactive", "absent"], default="active"
            ),
            priority=dict(type="int"),
            discard=dict(type="str", choices=list(util.DISCARD_CHOICES)),
            size=dict(type="str"),
            label=dict(type="str"),
            uuid=dict(type="str"),
            force=dict(type="bool", default=False),
            persistent=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.run_command_environ_update = dict(LANG="C", LC_ALL="C", LC_MESSAGES="C")
    area = SwapArea(module)
    try:
        result = area.run()
    except (SwapError, OSError) as exc:
        module.fail_json(
            msg=str(exc),
            path=getattr(area, "real", None) or module.params["path"],
            actions=area.actions,
        )
    module.exit_json(actions=area.actions, **result)


if __name__ == "__main__":
    main()
