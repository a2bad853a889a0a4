# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's private L2 segment: a bridge and one tap per VM inside a network
namespace that the lab owns.

The lab addresses exist only inside that namespace, so nothing the lab does
can send traffic to them from the host's own network stack.  QEMU itself runs
in the host namespace (its user-mode NIC forwards SSH from 127.0.0.1) and gets
its tap as an already-open file descriptor, opened inside the lab namespace.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import fcntl
import ipaddress
import os
import struct

from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import (
    LABEL_PREFIX,
    LabError,
    netns_name,
    run,
)

BRIDGE = "br0"
CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def tap_name(index):
    return "tap%d" % index


def list_netns():
    proc = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def netns_exists(name):
    return name in list_netns()


def ns_run(ns, argv, check=True):
    return run(["ip", "-n", ns] + argv, check=check)


def link_exists(ns, ifname):
    return ns_run(ns, ["link", "show", "dev", ifname], check=False).returncode == 0


def bridge_cidr(subnet):
    """The namespace's own address on the segment: the last host of the subnet."""
    net = ipaddress.ip_network(subnet)
    return "%s/%d" % (list(net.hosts())[-1], net.prefixlen)


def network_state(lab, subnet, taps):
    """What exists now, as a comparable dict (used for changed/diff)."""
    ns = netns_name(lab)
    if not netns_exists(ns):
        return {"netns": None, "bridge": None, "taps": []}
    bridge = None
    if link_exists(ns, BRIDGE):
        addrs = ns_run(ns, ["-o", "-4", "addr", "show", "dev", BRIDGE], check=False).stdout
        bridge = [w for line in addrs.splitlines() for w in line.split() if "/" in w]
        bridge = bridge[0] if bridge else ""
    present = [t for t in range(taps) if link_exists(ns, tap_name(t))]
    return {"netns": ns, "bridge": bridge, "taps": [tap_name(t) for t in present]}


def wanted_state(lab, subnet, taps):
    return {
        "netns": netns_name(lab),
        "bridge": bridge_cidr(subnet),
        "taps": [tap_name(t) for t in range(taps)],
    }


def ensure_network(lab, subnet, taps):
    """Create whatever part of the segment is missing; return True if anything was."""
    before = network_state(lab, subnet, taps)
    want = wanted_state(lab, subnet, taps)
    if before == want:
        return False
    ns = want["netns"]
    if before["netns"] is None:
        run(["ip", "netns", "add", ns])
    ns_run(ns, ["link", "set", "lo", "up"])
    if not link_exists(ns, BRIDGE):
        ns_run(ns, ["link", "add", BRIDGE, "type", "bridge"])
    if before["bridge"] != want["bridge"]:
        ns_run(ns, ["addr", "flush", "dev", BRIDGE])
        ns_run(ns, ["addr", "add", want["bridge"], "dev", BRIDGE])
    ns_run(ns, ["link", "set", BRIDGE, "up"])
    for index in range(taps):
        tap = tap_name(index)
        if not link_exists(ns, tap):
            ns_run(ns, ["tuntap", "add", "dev", tap, "mode", "tap"])
        ns_run(ns, ["link", "set", tap, "master", BRIDGE])
        ns_run(ns, ["link", "set", tap, "up"])
    return True


def remove_network(lab):
    ns = netns_name(lab)
    if netns_exists(ns):
        run(["ip", "netns", "del", ns])
        return True
    return False


def stale_namespaces(keep=()):
    return [ns for ns in list_netns() if ns.startswith(LABEL_PREFIX + "-") and ns not in keep]


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabError("setns failed: %s (the lab needs root)" % os.strerror(err))


def open_tap(lab, tap):
    """Open `tap` inside the lab namespace and return the fd, usable from any namespace.

    The caller must be single-threaded (setns switches only the calling thread).
    """
    ns_path = "/run/netns/%s" % netns_name(lab)
    if not os.path.exists(ns_path):
        raise LabError(
            "lab network namespace %s is missing; run the lab with state=present" % ns_path
        )
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    lab_ns = os.open(ns_path, os.O_RDONLY)
    try:
        _setns(lab_ns)
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR)
            ifreq = struct.pack("16sH22x", tap.encode(), IFF_TAP | IFF_NO_PI)
            try:
                fcntl.ioctl(fd, TUNSETIFF, ifreq)
            except OSError as exc:
                os.close(fd)
                raise LabError(
                    "cannot attach to %s in %s: %s (is a VM already using it?)"
                    % (tap, ns_path, exc)
                )
        finally:
            _setns(host_ns)
    finally:
        os.close(host_ns)
        os.close(lab_ns)
    return fd
