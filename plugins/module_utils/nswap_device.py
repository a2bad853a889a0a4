# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers of the nswap.cluster.nswap_device module.

The rules of nswap.ko's configfs attributes (docs/kmod.md, "Configuration"):
their ranges, the device size, host names of servers, which attributes can
only change while the device is powered off, and the plan that turns the
current attributes into the wanted ones.  Nothing here touches the system;
nswap_ko reads it, and holds the ADDR:PORT forms nswap.ko reads and prints.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket

from ansible_collections.nswap.cluster.plugins.module_utils.nswap_ko import (
    format_server,
    split_server,
)
from ansible_collections.nswap.cluster.plugins.module_utils.swap import parse_size

PAGE = 4096
MAX_SIZE = 16 << 40
MAX_SERVERS = 64
# attribute: (lowest, highest) as nswap.ko accepts them
RANGES = dict(
    connections_per_server=(1, 16),
    timeout_ms=(100, 3600000),
    retries=(0, 100),
    sweep_interval_s=(0, 86400),
)
# attributes nswap.ko refuses to change while the device is powered on
OFFLINE_ONLY = ("size", "connections_per_server", "migration", "backing")
# the attributes set from module options, in the order they are written
SETTINGS = (
    "size",
    "connections_per_server",
    "timeout_ms",
    "retries",
    "migration",
    "backing",
    "sweep_interval_s",
)
# nswap.ko's limit on the backing attribute (NSWAP_BACKING_PATH_MAX - 1)
MAX_BACKING_PATH = 255
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,31}$")


def check_name(name):
    if not _NAME_RE.match(name or "") or name in (".", ".."):
        raise ValueError(
            "name=%r is not a configfs item name; use letters, digits, '_', '-' or '.' "
            "(at most 31), e.g. nswap0 (an item named nswapN gets /dev/nswapN)" % (name,)
        )
    return name


def device_size(value):
    """Bytes of a device size (see swap.parse_size: 512M is 512 MiB), a multiple of 4096."""
    size = parse_size(value)
    if size % PAGE or size > MAX_SIZE:
        raise ValueError(
            "size=%r is %d bytes; nswap needs a non-zero multiple of 4096 bytes up to 16T"
            % (value, size)
        )
    return size


def check_range(name, value):
    low, high = RANGES[name]
    if value is not None and not low <= value <= high:
        raise ValueError("%s=%d is out of range; nswap accepts %d..%d" % (name, value, low, high))
    return value


def resolve_server(server, getaddrinfo=socket.getaddrinfo):
    """The ADDR:PORT form nswap.ko accepts for server (a host name resolved, IPv4 first)."""
    host, port = split_server(server)
    try:
        infos = getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(
            "server %s: cannot resolve %r (%s); use an IP address or a name this node "
            "resolves" % (server, host, exc)
        )
    addresses = [info[4][0] for info in infos if info[0] == socket.AF_INET]
    addresses += [info[4][0] for info in infos if info[0] == socket.AF_INET6]
    if not addresses:
        raise ValueError("server %s: %r has no IPv4 or IPv6 address" % (server, host))
    if addresses[0].startswith("fe80:"):
        raise ValueError(
            "server %s: link-local IPv6 addresses are not supported by nswap; use a global "
            "or unique-local address" % server
        )
    return format_server(addresses[0], port)


def check_backing(path):
    """The backing option as nswap.ko takes it: None (leave alone), "" (none) or an
    absolute path of at most MAX_BACKING_PATH bytes on one line; ValueError otherwise."""
    if path is None or path == "":
        return path
    if (
        not path.startswith("/")
        or len(path.encode("utf-8")) > MAX_BACKING_PATH
        or any(c.isspace() for c in path)
    ):
        raise ValueError(
            "backing=%r is not usable; give the absolute path of a local block device "
            "(e.g. /dev/vdb, at most %d bytes, no spaces), or an empty string for none"
            % (path, MAX_BACKING_PATH)
        )
    return path


def wanted_config(params, servers):
    """The attributes the module manages, as nswap.ko reports them (None = leave alone)."""
    return dict(
        size=device_size(params["size"]) if params["size"] is not None else None,
        servers=list(servers),
        keep_other_servers=bool(params.get("keep_other_servers")),
        connections_per_server=check_range(
            "connections_per_server", params["connections_per_server"]
        ),
        timeout_ms=check_range("timeout_ms", params["timeout_ms"]),
        retries=check_range("retries", params["retries"]),
        migration=None if params.get("migration") is None else int(params["migration"]),
        backing=check_backing(params.get("backing")),
        sweep_interval_s=check_range("sweep_interval_s", params.get("sweep_interval_s")),
    )


def plan(current, wanted):
    """(attribute writes in order, whether they need the device powered off).

    current: the attributes now (powered=bool among them), or None when the item
    does not exist.  wanted: from wanted_config.  A write is (attribute, value).
    """
    writes = []
    now = current or {}
    for name in SETTINGS:
        if wanted.get(name) is not None and wanted[name] != now.get(name):
            writes.append((name, str(wanted[name])))
    have = now.get("servers", [])
    for server in have:
        if server not in wanted["servers"] and not wanted.get("keep_other_servers"):
            writes.append(("servers", "del " + server))
    for server in wanted["servers"]:
        if server not in have:
            writes.append(("servers", "add " + server))
    offline = any(
        name in OFFLINE_ONLY or value.startswith("del ") for name, value in writes
    ) and bool(now.get("powered"))
    return writes, offline


def config_of(item):
    """The module's view of a configfs item as nswap_ko.NswapKo.item reads it, or None.

    dict(size, servers: [ADDR:PORT], states: {ADDR:PORT: state}, connections_per_server,
    timeout_ms, retries, migration and backing (None from a module without them), powered:
    bool, index).
    """
    if item is None:
        return None
    servers = [server["name"] for server in item["servers"]]
    return dict(
        size=item["size"] or 0,
        servers=servers,
        states=dict((server["name"], server["state"]) for server in item["servers"]),
        connections_per_server=item["connections_per_server"],
        timeout_ms=item["timeout_ms"],
        retries=item["retries"],
        migration=item.get("migration"),
        backing=item.get("backing"),
        sweep_interval_s=item.get("sweep_interval_s"),
        powered=item["power"] == 1,
        index=item["index"],
    )
