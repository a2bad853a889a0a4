# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one reader of nswap.ko's files, for nswap.cluster.nswap_device and nswap_info.

The layout is docs/kmod.md's: the module in ``/sys/module/nswap``, one configfs
item per device in ``/sys/kernel/config/nswap/<name>/``, the counters of a
powered device in ``/sys/block/nswapN/nswap/``, swap areas in ``/proc/swaps``.
:class:`NswapKo` reads them below ``root``, the directory that stands for ``/``
(the unit tests point it at a fake tree).  Nothing here writes.

Also here: the server address forms nswap.ko reads and prints (``ADDR:PORT``,
``[IPV6]:PORT``), so that reading and validating them is one piece of code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.nswap.cluster.plugins.module_utils.swap import parse_proc_swaps

SYS_MODULE = "sys/module/nswap"
CONFIGFS_MOUNT = "sys/kernel/config"
CONFIGFS = CONFIGFS_MOUNT + "/nswap"
SYS_BLOCK = "sys/block"
PROC_SWAPS = "proc/swaps"
# configfs attributes that hold a number (docs/kmod.md, "Configuration")
CONFIG_NUMBERS = (
    "size",
    "connections_per_server",
    "timeout_ms",
    "retries",
    "migration",
    "sweep_interval_s",
    "power",
    "index",
)
LOAD_HINT = "modprobe nswap, or deploy it with the nswap.cluster.nswap_kmod role"

_SERVER_RES = (
    re.compile(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$"),  # [IPV6]:PORT
    re.compile(r"^([^:\s\[\]]+):(\d+)$"),  # IPV4:PORT or HOSTNAME:PORT
)


# --- values -----------------------------------------------------------------------


def read_text(path):
    """Stripped text of a file, or None when it does not exist or cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return None


def number(text):
    """int of a decimal (or 0x hex) file value; the text itself otherwise, None for None."""
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return text


def split_server(server):
    """(host, port) of "ADDR:PORT", "[IPV6]:PORT" or "HOSTNAME:PORT"; ValueError otherwise."""
    text = str(server).strip()
    for pattern in _SERVER_RES:
        match = pattern.match(text)
        if match and 0 < int(match.group(2)) < 65536:
            return match.group(1), int(match.group(2))
    raise ValueError(
        "server %r is not ADDR:PORT; use 10.0.0.2:7405, [fd00::2]:7405 or "
        "host.example:7405 (the port is required; nswapd listens on 7405)" % (server,)
    )


def format_server(address, port):
    """The ADDR:PORT form of nswap.ko, brackets around an IPv6 address."""
    return ("[%s]:%d" if ":" in address else "%s:%d") % (address, port)


def parse_servers(text):
    """configfs ``servers``: one ``ADDR:PORT STATE [pages=N] [hint=FREE/CAPACITY]`` line per
    server (pages and hint: nswap.ko 0.1 with placement hints, docs/kmod.md).

    -> [dict(name, address, port, state, pages, hint)]; address and port are None for a name
    that is not ADDR:PORT, state None for a line without one, pages None when not shown, hint
    dict(free, capacity) or None.
    """
    servers = []
    for line in (text or "").splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            address, port = split_server(fields[0])
        except ValueError:
            address, port = None, None
        extra = dict(field.split("=", 1) for field in fields[2:] if "=" in field)
        pages, hint = extra.get("pages"), extra.get("hint", "").split("/")
        servers.append(
            dict(
                name=fields[0],
                address=address,
                port=port,
                state=fields[1] if len(fields) > 1 else None,
                pages=int(pages) if pages and pages.lstrip("-").isdigit() else None,
                hint=(
                    dict(free=int(hint[0]), capacity=int(hint[1]))
                    if len(hint) == 2 and hint[0].isdigit() and hint[1].isdigit()
                    else None
                ),
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


# --- the files ----------------------------------------------------------------------


class NswapKo(object):
    """nswap.ko as its files below ``root`` show it."""

    def __init__(self, root="/"):
        self.root = root

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def configfs(self):
        return self.path(CONFIGFS)

    def item_path(self, name):
        return os.path.join(self.configfs, name)

    def loaded(self):
        """Whether nswap.ko is loaded (``/sys/module/nswap`` exists)."""
        return os.path.isdir(self.path(SYS_MODULE))

    def unusable(self):
        """None when devices can be read and made, else a sentence that says why not and
        what to do: nswap.ko not loaded, or configfs not mounted."""
        if os.path.isdir(self.configfs):
            return None
        if not self.loaded():
            return "nswap.ko is not loaded (no %s); load it: %s" % (
                self.path(SYS_MODULE),
                LOAD_HINT,
            )
        return (
            "nswap.ko is loaded but %s does not exist: configfs is not mounted at %s "
            "(mount -t configfs configfs %s)"
            % (self.configfs, self.path(CONFIGFS_MOUNT), self.path(CONFIGFS_MOUNT))
        )

    def kernel_module(self):
        """dict(loaded, version, srcversion, parameters, error); error says why no device
        can be used (see unusable), else None."""
        base = self.path(SYS_MODULE)
        result = dict(loaded=False, version=None, srcversion=None, parameters={})
        if self.loaded():
            params_dir = os.path.join(base, "parameters")
            names = sorted(os.listdir(params_dir)) if os.path.isdir(params_dir) else []
            result.update(
                loaded=True,
                version=read_text(os.path.join(base, "version")),
                srcversion=read_text(os.path.join(base, "srcversion")),
                parameters=dict(
                    (name, number(read_text(os.path.join(params_dir, name)))) for name in names
                ),
            )
        result["error"] = self.unusable()
        return result

    def item_names(self):
        """Names of the configfs items, sorted; [] when there is no configfs directory."""
        if not os.path.isdir(self.configfs):
            return []
        return sorted(
            name
            for name in os.listdir(self.configfs)
            if os.path.isdir(os.path.join(self.configfs, name))
        )

    def item(self, name):
        """The attributes of configfs item ``name``, or None when it does not exist.

        dict(name, size, connections_per_server, timeout_ms, retries, power, index:
        numbers, None when unreadable; client_id, backing: text ("" for no backing
        device, None from a module without the attribute); servers: parse_servers).
        """
        base = self.item_path(name)
        if not os.path.isdir(base):
            return None
        item = dict(name=name)
        for attr in CONFIG_NUMBERS:
            item[attr] = number(read_text(os.path.join(base, attr)))
        item["client_id"] = read_text(os.path.join(base, "client_id"))
        item["backing"] = read_text(os.path.join(base, "backing"))
        item["servers"] = parse_servers(read_text(os.path.join(base, "servers")))
        return item

    def counters(self, index):
        """The sysfs counters of /dev/nswap<index> (latency_hist as [lower_us, count]
        pairs); {} when that disk does not exist."""
        if not isinstance(index, int):
            return {}
        base = self.path(SYS_BLOCK, "nswap%d" % index, "nswap")
        if not os.path.isdir(base):
            return {}
        result = {}
        for name in sorted(os.listdir(base)):
            path = os.path.join(base, name)
            if not os.path.isfile(path):
                continue
            text = read_text(path)
            result[name] = parse_latency_hist(text) if name == "latency_hist" else number(text)
        return result

    def swap_areas(self):
        """Active swap areas (sizes in bytes), with ``nswap`` true for nswap devices."""
        text = read_text(self.path(PROC_SWAPS))
        areas = parse_proc_swaps(text + "\n") if text else []
        for area in areas:
            area["nswap"] = os.path.basename(area["name"]).startswith("nswap")
        return areas

    def devices(self):
        """Every configfs item, with its ``path`` (/dev/nswapN while powered on, else
        None), ``counters`` ({} while powered off) and ``swap`` (its swap_areas entry
        when it is an active swap area, else None)."""
        swaps = dict((area["name"], area) for area in self.swap_areas())
        result = []
        for name in self.item_names():
            device = self.item(name)
            if device is None:  # removed while we read
                continue
            index = device["index"]
            powered = device["power"] == 1 and isinstance(index, int)
            device["path"] = "/dev/nswap%d" % index if powered else None
            device["counters"] = self.counters(index) if powered else {}
            device["swap"] = swaps.get(device["path"]) if powered else None
            result.append(device)
        return result
