# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts of nswap.cluster.nswap_info, read from the kernel's files.

Every function takes ``root``, the directory that stands for ``/``, so that
the unit tests run them against a fake tree; the module passes ``/``.  The
layout is docs/kmod.md's: the module in ``/sys/module/nswap``, devices in
configfs ``/sys/kernel/config/nswap/<name>/``, counters in
``/sys/block/nswapN/nswap/``, swap areas in ``/proc/swaps``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.nswap.cluster.plugins.module_utils.swap import parse_proc_swaps

SYS_MODULE = "sys/module/nswap"
CONFIGFS = "sys/kernel/config/nswap"
SYS_BLOCK = "sys/block"
PROC_SWAPS = "proc/swaps"
# configfs attributes that hold a decimal number (docs/kmod.md, "Configuration")
CONFIG_NUMBERS = ("size", "connections_per_server", "timeout_ms", "retries", "power", "index")


def _path(root, *parts):
    return os.path.join(root, *parts)


def read_text(path):
    """Stripped text of a file, or None when it does not exist or cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return None


def _number(text):
    """int of a decimal (or 0x hex) file value; the text itself otherwise."""
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return text


def kernel_module(root="/"):
    """Whether nswap.ko is loaded, its version and its parameters."""
    base = _path(root, SYS_MODULE)
    if not os.path.isdir(base):
        return dict(loaded=False, version=None, srcversion=None, parameters={})
    params_dir = os.path.join(base, "parameters")
    parameters = {}
    if os.path.isdir(params_dir):
        for name in sorted(os.listdir(params_dir)):
            parameters[name] = _number(read_text(os.path.join(params_dir, name)))
    return dict(
        loaded=True,
        version=read_text(os.path.join(base, "version")),
        srcversion=read_text(os.path.join(base, "srcversion")),
        parameters=parameters,
    )


def parse_servers(text):
    """configfs ``servers``: one ``ADDR:PORT STATE`` line per server."""
    servers = []
    for line in (text or "").splitlines():
        fields = line.split()
        if not fields:
            continue
        name = fields[0]
        host, _colon, port = name.rpartition(":")
        servers.append(
            dict(
                name=name,
                address=host[1:-1] if host.startswith("[") else host,
                port=int(port) if port.isdigit() else None,
                state=fields[1] if len(fields) > 1 else None,
            )
        )
    return servers


def parse_latency_hist(text):
    """``latency_hist``: lines ``LOWER_US COUNT`` -> [[lower_us, count], ...]."""
    rows = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) == 2 and all(f.lstrip("-").isdigit() for f in fields):
            rows.append([int(fields[0]), int(fields[1])])
    return rows


def counters(root, index):
    """The sysfs counters of /dev/nswap<index>; {} when the disk does not exist."""
    base = _path(root, SYS_BLOCK, "nswap%d" % index, "nswap")
    if not os.path.isdir(base):
        return {}
    result = {}
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        if not os.path.isfile(path):
            continue
        text = read_text(path)
        if name == "latency_hist":
            result[name] = parse_latency_hist(text)
        else:
            result[name] = _number(text)
    return result


def devices(root="/"):
    """One dict per configfs item, with its servers, counters and swap use."""
    base = _path(root, CONFIGFS)
    if not os.path.isdir(base):
        return []
    swaps = dict((s["name"], s) for s in swap_areas(root))
    result = []
    for name in sorted(os.listdir(base)):
        item = os.path.join(base, name)
        if not os.path.isdir(item):
            continue
        device = dict(name=name)
        for attr in CONFIG_NUMBERS:
            device[attr] = _number(read_text(os.path.join(item, attr)))
        device["client_id"] = read_text(os.path.join(item, "client_id"))
        device["servers"] = parse_servers(read_text(os.path.join(item, "servers")))
        index = device["index"]
        powered = device["power"] == 1 and isinstance(index, int)
        device["path"] = "/dev/nswap%d" % index if powered else None
        device["counters"] = counters(root, index) if powered else {}
        device["swap"] = swaps.get(device["path"]) if powered else None
        result.append(device)
    return result


def swap_areas(root="/"):
    """Active swap areas (sizes in bytes), with ``nswap`` true for nswap devices."""
    text = read_text(_path(root, PROC_SWAPS))
    areas = parse_proc_swaps(text + "\n") if text else []
    for area in areas:
        area["nswap"] = os.path.basename(area["name"]).startswith("nswap")
    return areas
