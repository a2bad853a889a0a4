# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to a local nswapd for nswap.cluster.nswap_server and nswap_info.

STATUS and SET_CACHE_LIMIT over the wire protocol (docs/protocol.md, sections
5.5 and 5.7), with every failure turned into a ``ServerError`` whose message
names the server, what went wrong and what to do about it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import socket
import time

from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto
from ansible_collections.nswap.cluster.plugins.module_utils.swap import parse_size

PAGE_SIZE = proto.PAGE_SIZE
# Between STATUS probes while a freshly started nswapd sets up its listener.
PROBE_INTERVAL = 0.2
DRAIN_POLL_S = 0.5


class ServerError(Exception):
    pass


def where(address, port):
    return "[%s]:%d" % (address, port) if ":" in address else "%s:%d" % (address, port)


def limit_pages(value):
    """Pages of a cache_limit given as bytes or with a K/M/G/T suffix (rounded down)."""
    try:
        size = parse_size(value)
    except ValueError as exc:
        raise ServerError("cache_limit: %s" % str(exc).replace("size=", "", 1))
    pages = size // PAGE_SIZE
    if pages < 1:
        raise ServerError(
            "cache_limit=%s is less than one page (%d bytes); use at least 4K" % (value, PAGE_SIZE)
        )
    return pages


def mib(pages):
    """Human form of a page count for messages: '256 MiB (65536 pages)'."""
    size = pages * PAGE_SIZE
    if size % (1 << 20) == 0:
        return "%d MiB (%d pages)" % (size >> 20, pages)
    return "%d KiB (%d pages)" % (size >> 10, pages)


def status_dict(status):
    """All STATUS counters as a dict, plus the cache sizes in bytes.

    ``limit_pages``/``state_flags`` are None from an nswapd that predates them.
    """
    result = status._asdict()
    result["capacity_bytes"] = status.capacity_pages * PAGE_SIZE
    result["used_bytes"] = status.used_pages * PAGE_SIZE
    limit = status.limit_pages
    result["limit_bytes"] = None if limit is None else limit * PAGE_SIZE
    result["over_limit"] = bool((status.state_flags or 0) & proto.STATE_OVER_LIMIT)
    result["draining"] = bool((status.state_flags or 0) & proto.STATE_DRAINING)
    return result


def loopback_source(address):
    """The local end for a connection to ``address`` on this node: nswapd takes control
    requests only from a loopback peer, so a server bound to one of the node's own
    addresses is reached from 127.0.0.1 (::1 for IPv6); None for a loopback address or a
    name."""
    try:
        ip = ipaddress.ip_address("%s" % address)
    except ValueError:
        return None
    if ip.is_loopback:
        return None
    return ("::1", 0) if ip.version == 6 else ("127.0.0.1", 0)


def _connect(address, port, timeout):
    try:
        return proto.Client(address, port, timeout=timeout, source_address=loopback_source(address))
    except (OSError, socket.timeout) as exc:
        raise ServerError(
            "no nswapd answers on %s: %s; start it (state=started) or set address/port "
            "to where it listens" % (where(address, port), exc)
        )


def _failure(address, port, what, exc):
    return ServerError("%s %s failed: %s" % (what, where(address, port), exc))


def read_status(address, port, timeout):
    """The server's StatusReply."""
    client = _connect(address, port, timeout)
    try:
        return client.status()
    except (OSError, socket.timeout, proto.NswapError) as exc:
        raise _failure(address, port, "STATUS from", exc)
    finally:
        client.close()


def wait_status(address, port, timeout, clock=time.monotonic, sleep=time.sleep):
    """STATUS of a server that may still be starting: probe until it answers,
    for at most ``timeout`` seconds, then fail with the last error."""
    deadline = clock() + timeout
    while True:
        try:
            return read_status(address, port, timeout)
        except ServerError as exc:
            if clock() + PROBE_INTERVAL > deadline:
                raise ServerError("%s (waited %.0f s after starting it)" % (exc, timeout))
        sleep(PROBE_INTERVAL)


def wait_drained(
    address, port, timeout, drain_timeout, status, clock=time.monotonic, sleep=time.sleep
):
    """STATUS once the draining server holds no page; ServerError after drain_timeout
    seconds, naming what is left."""
    start = clock()
    first = status.used_pages
    while status.used_pages:
        if clock() - start >= drain_timeout:
            raise ServerError(
                "drain of nswapd on %s: %d of %d pages still there after %.0f s.  Pages move "
                "only with gossip on (nswapd's gossip table must list another server with "
                "room) and only for client devices that follow moves (migration: "
                "nswap_client_migration); the others stay until their clients swap off "
                "(see journalctl -u nswapd)"
                % (where(address, port), status.used_pages, first, drain_timeout)
            )
        sleep(DRAIN_POLL_S)
        status = read_status(address, port, timeout)
    return status


def check_limit(status, pages, address, port):
    """Raise unless ``pages`` is a limit the server described by ``status`` accepts."""
    if status.limit_pages is None:
        raise ServerError(
            "nswapd on %s does not support a runtime cache limit (its STATUS has no "
            "limit_pages); upgrade nswapd, or set cache_size in nswapd.conf and restart"
            % where(address, port)
        )
    if pages > status.capacity_pages:
        raise ServerError(
            "cache_limit %s exceeds the maximum of nswapd on %s, %s (cache_size in "
            "nswapd.conf); lower cache_limit, or raise cache_size and restart nswapd"
            % (mib(pages), where(address, port), mib(status.capacity_pages))
        )


def set_limit(address, port, timeout, pages):
    """Set the cache limit; returns the server's StatusReply afterwards."""
    client = _connect(address, port, timeout)
    try:
        status, reply = client.set_cache_limit(pages)
    except (OSError, socket.timeout, proto.NswapError) as exc:
        raise _failure(address, port, "SET_CACHE_LIMIT on", exc)
    finally:
        client.close()
    if status == proto.EPERM:
        raise ServerError(
            "nswapd on %s refused SET_CACHE_LIMIT: it takes control requests only from a "
            "loopback address and from root or nswapd's own user; run the task on the "
            "server's node as root (become: true) and leave address at 127.0.0.1 (or ::1)"
            % where(address, port)
        )
    if status == proto.EINVAL and reply is not None:
        raise ServerError(
            "nswapd on %s refused cache limit %s: it must be 1 to %d pages (%s)"
            % (where(address, port), mib(pages), reply.capacity_pages, mib(reply.capacity_pages))
        )
    if status != proto.OK or reply is None:
        raise ServerError(
            "nswapd on %s answered SET_CACHE_LIMIT with %s"
            % (where(address, port), proto.status_name(status))
        )
    return reply
