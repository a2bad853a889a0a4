# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers of the nswap.cluster.nswap_device module.

The rules of nswap.ko's configfs attributes (docs/kmod.md, "Configuration"):
their ranges, the forms of size and server addresses, which attributes can
only change while the device is powered off, and the plan that turns the
current attributes into the wanted ones.  Nothing here touches the system.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket

PAGE = 4096
MAX_SIZE = 16 << 40
MAX_SERVERS = 64
# attribute: (lowest, highest) as nswap.ko accepts them
RANGES = dict(connections_per_server=(1, 16), timeout_ms=(100, 3600000), retries=(0, 100))
# attributes nswap.ko refuses to change while the device is powered on
OFFLINE_ONLY = ("size", "connections_per_server")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,31}$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def check_name(name):
    if not _NAME_RE.match(name or "") or name in (".", ".."):
        raise ValueError(
            "name=%r is not a configfs item name; use letters, digits, '_', '-' or '.' "
            "(at most 31), e.g. nswap0 (an item named nswapN gets /dev/nswapN)" % (name,)
        )
    return name


def parse_size(value):
    """Bytes of a device size: bytes or K/M/G/T (powers of 1024), a multiple of 4096."""
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ValueError(
            "size=%r is not a size; use bytes (1073741824) or a number with a K, M, G or T "
            "suffix (1G, 512M)" % (value,)
        )
    size = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if size <= 0 or size % PAGE or size > MAX_SIZE:
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


def split_server(server):
    """(host, port) of "ADDR:PORT", "[IPV6]:PORT" or "HOSTNAME:PORT"."""
    text = str(server).strip()
    match = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", text) or re.match(
        r"^([^:\s\[\]]+):(\d+)$", text
    )
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(
            "server %r is not ADDR:PORT; use 10.0.0.2:7405, [fd00::2]:7405 or "
            "host.example:7405 (the port is required; nswapd listens on 7405)" % (server,)
        )
    return match.group(1), int(match.group(2))


def format_server(address, port):
    return ("[%s]:%d" if ":" in address else "%s:%d") % (address, port)


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


def parse_servers(text):
    """[(ADDR:PORT, state)] from the configfs servers attribute."""
    servers = []
    for line in (text or "").splitlines():
        fields = line.split()
        if fields:
            servers.append((fields[0], fields[1] if len(fields) > 1 else ""))
    return servers


def wanted_config(params, servers):
    """The attributes the module manages, as nswap.ko reports them (None = leave alone)."""
    return dict(
        size=parse_size(params["size"]) if params["size"] is not None else None,
        servers=list(servers),
        connections_per_server=check_range(
            "connections_per_server", params["connections_per_server"]
        ),
        timeout_ms=check_range("timeout_ms", params["timeout_ms"]),
        retries=check_range("retries", params["retries"]),
    )


def plan(current, wanted):
    """(attribute writes in order, whether they need the device powered off).

    current: the attributes now (powered=bool among them), or None when the item
    does not exist.  wanted: from wanted_config.  A write is (attribute, value).
    """
    writes = []
    now = current or {}
    for name in ("size", "connections_per_server", "timeout_ms", "retries"):
        if wanted[name] is not None and wanted[name] != now.get(name):
            writes.append((name, str(wanted[name])))
    have = now.get("servers", [])
    for server in have:
        if server not in wanted["servers"]:
            writes.append(("servers", "del " + server))
    for server in wanted["servers"]:
        if server not in have:
            writes.append(("servers", "add " + server))
    offline = any(
        name in OFFLINE_ONLY or value.startswith("del ") for name, value in writes
    ) and bool(now.get("powered"))
    return writes, offline
