# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk and link profiles of a running lab, changed without rebooting a VM.

Disk: QEMU's block throttling of each VM's swap disk (drive id ``swap``), set
through the VM's human monitor socket (``block_set_io_throttle``), read back
with ``info block``.  Link: a token bucket (``tc qdisc tbf``) on the egress of
every tap inside the lab namespace; a tap's egress is what its VM receives, so
every VM's receive rate is limited and so is every VM-to-VM path.
The numbers of the named profiles live in roles/lab/vars/profiles.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import re
import socket
import time

from ansible_collections.nswap.cluster.plugins.module_utils.lab import net
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LabError,
    netns_name,
    read_json,
)

SWAP_DRIVE = "swap"  # the -drive id vm.py gives the swap disk
MONITOR_TIMEOUT_S = 10
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
PROMPT = "(qemu) "
# tbf needs a bucket of at least one (GSO) packet; 10 ms of the rate is the usual rule.
MIN_BURST_BYTES = 64 * 1024
TBF_LATENCY = "100ms"


def lab_vms(workdir):
    """{name: {'index': tap index, 'swap_disk': bool}} of the VMs whose state files
    are in the lab directory."""
    vms = {}
    for path in sorted(glob.glob(os.path.join(workdir, "*.json"))):
        spec = (read_json(path) or {}).get("spec") or {}
        if "index" in spec and "name" in spec:
            vms[spec["name"]] = {
                "index": spec["index"],
                "swap_disk": bool(spec.get("swap_disk_mib")),
            }
    if not vms:
        raise LabError(
            "no lab VMs found in %s: create the lab first (playbooks/lab.yml) "
            "or pass the lab's directory as workdir" % workdir
        )
    return vms


class Monitor:
    """One conversation with a QEMU human monitor on a unix socket; every read is bounded."""

    def __init__(self, path, timeout_s=MONITOR_TIMEOUT_S):
        self.path = path
        self.timeout_s = timeout_s
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise LabError(
                "cannot open the QEMU monitor %s: %s (is the VM running? "
                "recreate the lab with playbooks/lab.yml)" % (path, exc)
            )
        self._read_to_prompt()

    def _read_to_prompt(self):
        data = b""
        deadline = time.time() + self.timeout_s
        while not data.endswith(PROMPT.encode()):
            if time.time() > deadline:
                raise LabError(
                    "QEMU monitor %s did not answer in %ss" % (self.path, self.timeout_s)
                )
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise LabError("QEMU monitor %s closed the connection" % self.path)
            data += chunk
        return data.decode("utf-8", "replace")

    def command(self, line):
        """Run one HMP command; return its output without the echo and prompt."""
        self.sock.sendall(line.encode() + b"\n")
        lines = ANSI_RE.sub("", self._read_to_prompt()).split("\r\n")
        output = "\n".join(lines[1:-1]).strip()  # drop the echoed command and the prompt
        if output.startswith("Error:"):
            raise LabError("QEMU monitor %s: %s: %s" % (self.path, line, output))
        return output

    def close(self):
        self.sock.close()


def parse_throttle(info_block):
    """{'bps': n, 'iops': n} from `info block swap` (zeros when throttling is off)."""
    found = {"bps": 0, "iops": 0}
    for line in info_block.splitlines():
        if "I/O throttling:" in line:
            for key, value in re.findall(r"\b(bps|iops)=(\d+)", line):
                found[key] = int(value)
    return found


def monitor_path(workdir, name):
    return os.path.join(workdir, name + ".monitor")


def disk_throttle(workdir, name):
    mon = Monitor(monitor_path(workdir, name))
    try:
        return parse_throttle(mon.command("info block %s" % SWAP_DRIVE))
    finally:
        mon.close()


def set_disk_throttle(workdir, name, bps, iops):
    """Total (read+write) limits of the swap disk; 0 and 0 switch throttling off."""
    mon = Monitor(monitor_path(workdir, name))
    try:
        mon.command("block_set_io_throttle %s %d 0 0 %d 0 0" % (SWAP_DRIVE, bps, iops))
    finally:
        mon.close()


def parse_tbf_rate_mbit(qdisc_json):
    """Rate in Mbit/s of a root tbf from `tc -j qdisc show`, 0 when there is none."""
    for qdisc in json.loads(qdisc_json or "[]"):
        if qdisc.get("root") and qdisc.get("kind") == "tbf":
            rate = qdisc.get("options", {}).get("rate", 0)  # bytes per second
            return int(round(rate * 8 / 1e6))
    return 0


def link_rate_mbit(lab, index):
    proc = net.run(
        ["ip", "netns", "exec", netns_name(lab), "tc", "-j", "qdisc", "show", "dev",
         net.tap_name(index)]
    )  # fmt: skip
    return parse_tbf_rate_mbit(proc.stdout)


def tbf_argv(lab, index, rate_mbit):
    burst = max(MIN_BURST_BYTES, rate_mbit * 1000000 // 8 // 100)
    return [
        "ip", "netns", "exec", netns_name(lab), "tc", "qdisc", "replace",
        "dev", net.tap_name(index), "root", "tbf",
        "rate", "%dmbit" % rate_mbit, "burst", str(burst), "latency", TBF_LATENCY,
    ]  # fmt: skip


def set_link_rate(lab, index, rate_mbit):
    """Limit what the VM on tap `index` receives to rate_mbit; 0 removes the limit."""
    if rate_mbit:
        net.run(tbf_argv(lab, index, rate_mbit))
    elif link_rate_mbit(lab, index):
        net.run(
            ["ip", "netns", "exec", netns_name(lab), "tc", "qdisc", "del", "dev",
             net.tap_name(index), "root"]
        )  # fmt: skip


def current(lab, workdir, vms, with_disk, with_link):
    """{vm: {'disk': {...}, 'link_rate_mbit': n}} for the parts asked for."""
    state = {}
    for name, vm in sorted(vms.items()):
        entry = {}
        if with_disk and vm["swap_disk"]:
            entry["disk"] = disk_throttle(workdir, name)
        if with_link:
            entry["link_rate_mbit"] = link_rate_mbit(lab, vm["index"])
        state[name] = entry
    return state
