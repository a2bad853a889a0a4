#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nswap_server
short_description: Manage a node's nswap memory server (nswapd) at runtime
version_added: 0.1.0
description:
  - Starts, stops or restarts the memory server C(nswapd) through its systemd unit.
  - Sets the server's cache limit at runtime, without a restart, through the nswap protocol's
    C(SET_CACHE_LIMIT) request (docs/protocol.md, section 5.7), and returns the server's
    STATUS counters.
  - The limit is bounded by the configured C(cache_size) of C(nswapd.conf), the memory arena
    the server allocated at start; a larger O(cache_limit) is an error that names the bound.
  - Lowering the limit below the pages the server holds never drops a page; the server then
    refuses pages for new slots until its usage falls below the limit (RV(status.over_limit)).
  - The limit is not persistent; a restarted server starts at C(cache_size).  Run the task
    after every start, or set C(cache_size) in C(nswapd.conf) for a permanent change.
  - nswapd takes control requests only from a loopback address, so the task must run on the
    server's node with O(address) at its default.
author:
  - nswap developers (@nswap)
requirements:
  - systemd (C(systemctl)) when O(state) is set.
  - nswapd with runtime cache limits (the version in this collection) for O(cache_limit).
extends_documentation_fragment:
  - nswap.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reads the server's STATUS and reports what would change; nothing is sent to the
      server or to systemd but reads.
  diff_mode:
    support: full
    details: Shows the service state and the cache limit before and after.
options:
  state:
    description:
      - V(started) starts C(nswapd) if it is not running, V(stopped) stops it if it is,
        V(restarted) restarts it; a running server that holds pages is not restarted (the
        task fails and changes nothing) unless O(allow_restart_with_pages=true), since a
        restart drops every page and the clients' processes that own them die.
      - V(drained) empties a running server before a restart or removal - its cache limit
        goes to 0 (no new page; SET_CACHE_LIMIT 0, docs/protocol.md 5.7) and the task waits
        until every page it holds has moved to other servers (nswapd's gossip must be on,
        and the clients' devices must follow moves, C(migration)), for at most
        O(drain_timeout) seconds.  If pages are left then, the limit is put back and the
        task fails naming how many.  The server keeps running with limit 0; a restart, or
        O(cache_limit) in a later task, ends the drain.  A stopped server holds no page and
        is drained already.
      - When not set, the service is left as it is and must be running.
    type: str
    choices: [started, stopped, restarted, drained]
  cache_limit:
    description:
      - The cache limit, in bytes or with a suffix V(K), V(M), V(G) or V(T) (powers of 1024),
        for example V(512M); rounded down to 4 KiB pages.
      - At least one page and at most the server's C(cache_size).
      - When not set, the limit is left as it is.
      - Not allowed with O(state=stopped) or O(state=drained).
    type: str
  allow_restart_with_pages:
    description:
      - With O(state=restarted), restart also a server whose STATUS shows pages held
        (C(used_pages) above 0); they are lost.  Drain the server first instead when you can.
    type: bool
    default: false
  drain_timeout:
    description:
      - With O(state=drained), seconds to wait for the pages to move away.
    type: float
    default: 600
  address:
    description:
      - Address the server's STATUS and control requests go to, where C(nswapd) listens on
        this node (C(listen) in C(nswapd.conf)).
      - nswapd takes control requests only from a loopback peer, so for an address of this
        node that is not loopback the module connects from V(127.0.0.1) (V(::1) for IPv6);
        the task must run on the server's node.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port of the server (C(listen) in C(nswapd.conf)).
    type: int
    default: 7405
  timeout:
    description:
      - Seconds to wait for the connection and for each reply, and for a server that was just
        started or restarted to answer.
    type: float
    default: 10
  service:
    description: The systemd unit of the server.
    type: str
    default: nswapd.service
notes:
  - Must run as root for O(state) (use O(ignore:become=true)).
seealso:
  - module: nswap.cluster.nswap_info
  - name: The nswap wire protocol
    description: STATUS (section 5.5) and SET_CACHE_LIMIT (section 5.7).
    link: https://github.com/nswap/nswap/blob/main/docs/protocol.md
"""

EXAMPLES = r"""
- name: Run the memory server and lend at most 2 GiB of this node's memory
  nswap.cluster.nswap_server:
    state: started
    cache_limit: 2G

- name: Shrink the cache for a memory-hungry job (stored pages stay; new ones go elsewhere)
  nswap.cluster.nswap_server:
    cache_limit: 256M

- name: Read the server's counters
  nswap.cluster.nswap_server:
  register: server

- name: Empty the server (its pages move to other servers), then restart it
  nswap.cluster.nswap_server:
    state: drained
    drain_timeout: 300

- name: Stop the memory server
  nswap.cluster.nswap_server:
    state: stopped
"""

RETURN = r"""
state:
  description: Whether the unit is V(active) or V(inactive) after the run (in check mode, as it
    would be); V(null) when O(state) is not set.
  returned: always
  type: str
  sample: active
cache_limit:
  description: The server's cache limit in bytes after the run (in check mode, as it would be);
    V(null) when the server is stopped.
  returned: always
  type: int
  sample: 2147483648
status:
  description:
    - The server's STATUS after the run (in check mode, as it is now); empty when the server
      is stopped, or in check mode when it would only be started.
    - Page counts, counters since the server started, and the cache sizes in bytes.
  returned: always
  type: dict
  contains:
    capacity_pages:
      description: The maximum of the cache, C(cache_size) in pages.
      type: int
    limit_pages:
      description: The cache limit in pages.
      type: int
    used_pages:
      description: Pages stored now.
      type: int
    state_flags:
      description: Bit 0 set while more pages are stored than the limit, bit 1 while the
        server drains.
      type: int
    over_limit:
      description: More pages are stored than the limit; pages for new slots are refused.
      type: bool
    draining:
      description: The server drains (its limit was set to 0 by O(state=drained)).
      type: bool
    clients:
      description: Client connections past HELLO.
      type: int
    puts:
      description: PUTPAGE requests answered OK.
      type: int
    gets:
      description: GETPAGE requests.
      type: int
    invalidates:
      description: INVALIDATE requests.
      type: int
    get_misses:
      description: GETPAGE answered ENOENT or ESTALE.
      type: int
    errors:
      description: Other error replies and protocol violations.
      type: int
    bytes_in:
      description: Bytes received.
      type: int
    bytes_out:
      description: Bytes sent.
      type: int
    uptime_s:
      description: Seconds since the server started.
      type: int
    punts_received:
      description: Pages other servers moved here (PUNTPAGE stored); null from an nswapd
        that predates page migration.
      type: int
    punts_sent:
      description: Pages this server moved to another server that took them (its cache shrank,
        a drain, or overflow); null from an older nswapd.
      type: int
    updates_sent:
      description: UPDATE frames queued to the owners of pages moved here; null from an older
        nswapd.
      type: int
    overflows:
      description: New pages stored over the cache limit (nswapd's C(overflow)), to be moved
        on; null from an older nswapd.
      type: int
    punts_home:
      description: Pages sent back to their owners, which wrote them to their local backing
        device (no server had room for them); null from an older nswapd.
      type: int
    capacity_bytes:
      description: RV(status.capacity_pages) in bytes.
      type: int
    limit_bytes:
      description: RV(status.limit_pages) in bytes.
      type: int
    used_bytes:
      description: RV(status.used_pages) in bytes.
      type: int
  sample:
    capacity_pages: 65536
    limit_pages: 16384
    used_pages: 1200
    state_flags: 0
    over_limit: false
    draining: false
    clients: 2
    puts: 5000
    gets: 3800
    invalidates: 120
    get_misses: 0
    errors: 0
    bytes_in: 20971520
    bytes_out: 15728640
    uptime_s: 3600
    punts_received: 0
    punts_sent: 0
    updates_sent: 0
    overflows: 0
    punts_home: 0
    capacity_bytes: 268435456
    limit_bytes: 67108864
    used_bytes: 4915200
actions:
  description: What was done, or in check mode what would be done, in order.
  returned: always
  type: list
  elements: str
  sample: ["systemctl start nswapd.service", "set cache limit 65536 -> 16384 pages"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_server as util

PAGE_SIZE = util.PAGE_SIZE
SYSTEMCTL_VERB = {"started": "start", "stopped": "stop", "restarted": "restart"}


class NswapServer(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.actions = []
        self.started_here = False

    # --- systemd ---------------------------------------------------------------

    def systemctl(self, *args):
        argv = [self.module.get_bin_path("systemctl", required=True)] + list(args)
        return self.module.run_command(argv, expand_user_and_vars=False)

    def is_active(self):
        # is-active: rc 0 active, 3 inactive/failed, 4 no such unit (also "inactive")
        rc, out, err = self.systemctl("is-active", self.params["service"])
        return rc == 0

    def change_service(self, verb):
        unit = self.params["service"]
        self.actions.append("systemctl %s %s" % (verb, unit))
        if self.check_mode:
            return
        rc, out, err = self.systemctl(verb, unit)
        if rc != 0:
            raise util.ServerError(
                "systemctl %s %s failed (rc=%d): %s; see journalctl -u %s"
                % (verb, unit, rc, (err or out).strip(), unit)
            )
        self.started_here = verb in ("start", "restart")

    def refuse_restart_with_pages(self, endpoint):
        held = util.read_status(*endpoint)
        if held.used_pages > 0:
            raise util.ServerError(
                "refusing to restart %s: nswapd on %s holds %s of clients' swap, and a restart "
                "drops them (the clients' processes that own them die); nothing was changed.  "
                "Drain the server first (state=drained, or swap the clients off it), or set "
                "allow_restart_with_pages=true to restart anyway"
                % (
                    self.params["service"],
                    util.where(endpoint[0], endpoint[1]),
                    util.mib(held.used_pages),
                )
            )

    # --- run --------------------------------------------------------------------

    def validate(self):
        params = self.params
        if params["state"] == "stopped" and params["cache_limit"] is not None:
            raise util.ServerError(
                "cache_limit needs a running server; drop it or use state=started"
            )
        if params["state"] == "drained" and params["cache_limit"] is not None:
            raise util.ServerError(
                "cache_limit and state=drained do not go together (a drain sets the limit to "
                "0); drop cache_limit, or end the drain with it in a later task"
            )
        if not 0 < params["drain_timeout"] <= 86400:
            raise util.ServerError(
                "drain_timeout=%s must be more than 0 and at most 86400 seconds"
                % params["drain_timeout"]
            )
        if not 0 < params["timeout"] <= 3600:
            raise util.ServerError(
                "timeout=%s must be more than 0 and at most 3600 seconds" % params["timeout"]
            )
        if not 0 < params["port"] < 65536:
            raise util.ServerError("port=%d must be 1 to 65535" % params["port"])
        self.pages = None
        if params["cache_limit"] is not None:
            self.pages = util.limit_pages(params["cache_limit"])

    def drain(self, endpoint):
        """state=drained: limit 0, then wait until the server holds no page; on a timeout
        the old limit goes back and the task fails."""
        address, port = endpoint[0], endpoint[1]
        if not self.is_active():
            return dict(changed=False, state="inactive", cache_limit=None, status={},
                        actions=self.actions)  # fmt: skip
        status = util.read_status(*endpoint)
        before = status.limit_pages
        util.check_limit(status, 0, address, port)
        if before == 0 and status.used_pages == 0:
            return self.drained_result(status, before)
        self.actions.append(
            "drain: cache limit %d -> 0 pages, wait for %d pages to move away"
            % (before, status.used_pages)
        )
        if self.check_mode:
            return self.drained_result(status, before, after_limit=0)
        status = util.set_limit(address, port, endpoint[2], 0)
        try:
            status = util.wait_drained(
                address, port, endpoint[2], self.params["drain_timeout"], status
            )
        except util.ServerError as exc:
            if not before:
                raise
            util.set_limit(address, port, endpoint[2], before)
            self.actions.append("cache limit 0 -> %d pages (drain undone)" % before)
            raise util.ServerError("%s.  The cache limit is back at %d pages" % (exc, before))
        return self.drained_result(status, before)

    def drained_result(self, status, before, after_limit=None):
        after = status.limit_pages if after_limit is None else after_limit
        result = dict(
            changed=bool(self.actions),
            state="active",
            cache_limit=after * PAGE_SIZE,
            status=util.status_dict(status),
            actions=self.actions,
        )
        if self.module._diff:
            result["diff"] = dict(before=render(True, before), after=render(True, after))
        return result

    def run(self):
        params = self.params
        self.validate()
        state = params["state"]
        endpoint = (params["address"], params["port"], params["timeout"])
        if state == "drained":
            return self.drain(endpoint)

        was_active = self.is_active() if state else None
        will_run = state in ("started", "restarted") or (state is None)
        if state == "started" and not was_active:
            self.change_service("start")
        elif state == "stopped" and was_active:
            self.change_service("stop")
        elif state == "restarted":
            if was_active and not params["allow_restart_with_pages"]:
                self.refuse_restart_with_pages(endpoint)
            self.change_service("restart")

        before_limit = after_limit = None
        status = None
        if will_run and not (self.check_mode and self.actions):
            # a server that runs now (or that we just started): its STATUS
            status = (
                util.wait_status(*endpoint) if self.started_here else util.read_status(*endpoint)
            )
            before_limit = status.limit_pages
        if will_run and self.pages is not None:
            if status is not None:
                util.check_limit(status, self.pages, params["address"], params["port"])
            if status is None or status.limit_pages != self.pages:
                self.actions.append(
                    "set cache limit %s -> %d pages"
                    % ("?" if status is None else status.limit_pages, self.pages)
                )
                if not self.check_mode:
                    status = util.set_limit(
                        params["address"], params["port"], params["timeout"], self.pages
                    )
            after_limit = self.pages
        elif status is not None:
            after_limit = status.limit_pages
        if state == "restarted" and not self.check_mode:
            before_limit = None  # the old process is gone; what it had is unknown

        after_active = None if state is None else state != "stopped"
        result = dict(
            changed=bool(self.actions),
            state=None if state is None else ("active" if after_active else "inactive"),
            cache_limit=None if after_limit is None else after_limit * PAGE_SIZE,
            status=util.status_dict(status) if status is not None else {},
            actions=self.actions,
        )
        if self.module._diff:
            result["diff"] = dict(
                before=render(was_active, before_limit if was_active is not False else None),
                after=render(after_active, after_limit),
            )
        return result

    def rollback(self):
        """Stop a server this run started, when a later step failed."""
        if self.started_here and self.params["state"] == "started":
            rc, out, err = self.systemctl("stop", self.params["service"])
            self.actions.append("systemctl stop %s (rollback)" % self.params["service"])
            return rc == 0
        return True


def render(active, limit_pages):
    lines = []
    if active is not None:
        lines.append("state: %s" % ("active" if active else "inactive"))
    if limit_pages is not None:
        lines.append("cache_limit: %d  # %s" % (limit_pages * PAGE_SIZE, util.mib(limit_pages)))
    return "\n".join(lines) + "\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "stopped", "restarted", "drained"]),
            drain_timeout=dict(type="float", default=600.0),
            allow_restart_with_pages=dict(type="bool", default=False),
            cache_limit=dict(type="str"),
            address=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=util.proto.DEFAULT_PORT),
            timeout=dict(type="float", default=10.0),
            service=dict(type="str", default="nswapd.service"),
        ),
        supports_check_mode=True,
    )
    module.run_command_environ_update = dict(LANG="C", LC_ALL="C", LC_MESSAGES="C")
    server = NswapServer(module)
    try:
        result = server.run()
    except util.ServerError as exc:
        msg = str(exc)
        if not server.check_mode and not server.rollback():
            msg += "; stopping %s again failed too" % module.params["service"]
        elif server.started_here and module.params["state"] == "started":
            msg += "; %s was stopped again" % module.params["service"]
        module.fail_json(msg=msg, actions=server.actions)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
