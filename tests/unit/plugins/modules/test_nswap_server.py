"""nswap.cluster.nswap_server run in-process against a real nswapd on loopback.

The server is the native nswapd (built by ``make -C src/nswapd``), started on
127.0.0.1 with a 16-page cache; systemd is simulated by FakeSystemd, whose
``start`` launches such an nswapd on a fixed port and whose ``stop`` ends it.
"""

import socket
import threading
import time

import pytest
from ansible.module_utils import basic
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_server as util
from ansible_collections.nswap.cluster.plugins.modules import nswap_server as server_module

from harness.nswapd import Nswapd as Server
from tests.unit.module_harness import run_module

PAGES = 16  # --cache-size 64K
KIB = 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nswapd(nswapd_bin):
    srv = Server(nswapd_bin, "--cache-size", "64K")
    yield srv
    assert srv.stop() == 0, srv.log_text()


def run(monkeypatch, server_port, check_mode=False, diff=False, **args):
    args.setdefault("port", server_port)
    if diff:
        args["_ansible_diff"] = True
    return run_module(monkeypatch, server_module, args, check_mode=check_mode)


def limit_now(port):
    return util.read_status("127.0.0.1", port, 5).limit_pages


# --- cache limit against a running server ---------------------------------------


def test_reads_status_without_changing_anything(monkeypatch, nswapd):
    failed, result = run(monkeypatch, nswapd.port)
    assert not failed, result
    assert result["changed"] is False and result["actions"] == []
    st = result["status"]
    assert (st["capacity_pages"], st["limit_pages"], st["used_pages"]) == (PAGES, PAGES, 0)
    assert st["capacity_bytes"] == st["limit_bytes"] == 64 * KIB
    assert st["over_limit"] is False and "uptime_s" in st and "bytes_in" in st
    assert result["cache_limit"] == 64 * KIB and result["state"] is None


def test_sets_the_limit_idempotently_with_diff(monkeypatch, nswapd):
    failed, result = run(monkeypatch, nswapd.port, diff=True, cache_limit="40K")
    assert not failed, result
    assert result["changed"] is True
    assert result["actions"] == ["set cache limit 16 -> 10 pages"]
    assert result["status"]["limit_pages"] == 10 and result["cache_limit"] == 40 * KIB
    assert result["diff"]["before"] == "cache_limit: 65536  # 64 KiB (16 pages)\n"
    assert result["diff"]["after"] == "cache_limit: 40960  # 40 KiB (10 pages)\n"
    assert limit_now(nswapd.port) == 10
    # the same limit, also as bytes rounded down to pages: nothing to do
    for same in ("40K", "40960", str(40 * KIB + 100)):
        failed, result = run(monkeypatch, nswapd.port, cache_limit=same)
        assert (failed, result["changed"], result["actions"]) == (False, False, []), same


def test_check_mode_reports_without_setting(monkeypatch, nswapd):
    failed, result = run(monkeypatch, nswapd.port, check_mode=True, diff=True, cache_limit="8K")
    assert not failed, result
    assert result["changed"] is True and result["actions"] == ["set cache limit 16 -> 2 pages"]
    assert result["status"]["limit_pages"] == PAGES  # as it is now
    assert "2 pages" in result["diff"]["after"]
    assert limit_now(nswapd.port) == PAGES


def test_limit_above_the_maximum_names_the_bound(monkeypatch, nswapd):
    failed, result = run(monkeypatch, nswapd.port, cache_limit="1M")
    assert failed
    assert "cache_limit 1 MiB (256 pages) exceeds the maximum" in result["msg"]
    assert "64 KiB (16 pages) (cache_size in nswapd.conf)" in result["msg"]
    assert limit_now(nswapd.port) == PAGES


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "cache_limit: 'lots' is not a size; use bytes"),
        ("100", "cache_limit=100 is less than one page (4096 bytes); use at least 4K"),
        ("0", "cache_limit: '0' must be more than 0 bytes"),
    ],
)
def test_bad_cache_limit_is_refused_before_anything_is_sent(monkeypatch, nswapd, value, message):
    failed, result = run(monkeypatch, nswapd.port, cache_limit=value)
    assert failed and message in result["msg"], result["msg"]
    assert nswapd.wait_log("cache limit", timeout=0.2) is None


def test_lowering_below_usage_reports_over_limit(monkeypatch, nswapd):
    cid = 0x51
    with proto.Client("127.0.0.1", nswapd.port, timeout=5) as c:
        c.hello(cid)
        for slot in range(6):
            assert c.put(slot, 1, bytes([slot]) * proto.PAGE_SIZE) == proto.OK
    failed, result = run(monkeypatch, nswapd.port, cache_limit="8K")
    assert not failed, result
    st = result["status"]
    assert (st["used_pages"], st["limit_pages"], st["over_limit"]) == (6, 2, True)


def test_no_server_is_a_clear_error(monkeypatch):
    port = free_port()
    failed, result = run(monkeypatch, port, cache_limit="8K")
    assert failed
    assert result["msg"].startswith("no nswapd answers on 127.0.0.1:%d: " % port)
    assert "start it (state=started) or set address/port" in result["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (dict(state="stopped", cache_limit="8K"), "cache_limit needs a running server"),
        (dict(timeout=0), "timeout=0.0 must be more than 0"),
        (dict(port=70000), "port=70000 must be 1 to 65535"),
        (dict(state="drained", cache_limit="8K"), "cache_limit and state=drained do not go"),
        (dict(state="drained", drain_timeout=0), "drain_timeout=0.0 must be more than 0"),
    ],
)
def test_bad_arguments(monkeypatch, args, message):
    failed, result = run(monkeypatch, 1, **args)
    assert failed and message in result["msg"], result["msg"]


def test_a_server_without_runtime_limits_is_named():
    old = proto.decode_status(proto.encode_status(capacity_pages=16)[: proto.STATUS_V1_SIZE])
    with pytest.raises(util.ServerError, match="does not support a runtime cache limit"):
        util.check_limit(old, 8, "127.0.0.1", 7405)


# --- service state through (simulated) systemd ------------------------------------


class FakeSystemd:
    """systemctl for one unit whose process is a real nswapd on ``port``."""

    def __init__(self, binary, port):
        self.bin = binary
        self.port = port
        self.server = None
        self.calls = []
        self.starts = 0

    def active(self):
        return self.server is not None and self.server.alive()

    def run_command(self, module, args, **kwargs):
        verb, unit = args[1], args[2]
        self.calls.append([verb, unit])
        assert unit == "nswapd.service"
        if verb == "is-active":
            return (0, "active\n", "") if self.active() else (3, "inactive\n", "")
        if verb in ("stop", "restart") and self.active():
            assert self.server.stop() == 0
            self.server = None
        if verb in ("start", "restart") and not self.active():
            self.server = Server(self.bin, "--cache-size", "64K", listen="127.0.0.1:%d" % self.port)
            self.starts += 1
        return 0, "", ""

    def changes(self):
        return [c for c in self.calls if c[0] != "is-active"]


@pytest.fixture
def systemd(monkeypatch, nswapd_bin):
    fake = FakeSystemd(nswapd_bin, free_port())
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, **kw: name)
    monkeypatch.setattr(
        basic.AnsibleModule, "run_command", lambda self, args, **kw: fake.run_command(self, args)
    )
    yield fake
    if fake.active():
        fake.server.kill()


def test_started_starts_once_and_sets_the_limit(monkeypatch, systemd):
    failed, result = run(monkeypatch, systemd.port, diff=True, state="started", cache_limit="32K")
    assert not failed, result
    assert result["changed"] is True
    assert result["actions"] == ["systemctl start nswapd.service", "set cache limit 16 -> 8 pages"]
    assert result["state"] == "active" and result["status"]["limit_pages"] == 8
    assert result["diff"]["before"] == "state: inactive\n"
    assert result["diff"]["after"].startswith("state: active\ncache_limit: 32768")
    failed, result = run(monkeypatch, systemd.port, state="started", cache_limit="32K")
    assert (failed, result["changed"], systemd.starts) == (False, False, 1)


def test_check_mode_start_changes_nothing(monkeypatch, systemd):
    failed, result = run(monkeypatch, systemd.port, check_mode=True, state="started")
    assert not failed, result
    assert result["changed"] is True and result["actions"] == ["systemctl start nswapd.service"]
    assert result["status"] == {} and systemd.changes() == []


def test_stopped_and_restarted(monkeypatch, systemd):
    assert not run(monkeypatch, systemd.port, state="started", cache_limit="8K")[0]
    failed, result = run(monkeypatch, systemd.port, state="restarted")
    assert not failed, result
    assert result["changed"] is True and result["status"]["limit_pages"] == PAGES  # not kept
    failed, result = run(monkeypatch, systemd.port, state="stopped")
    assert not failed and result["changed"] is True and result["state"] == "inactive"
    assert result["status"] == {} and result["cache_limit"] is None and not systemd.active()
    failed, result = run(monkeypatch, systemd.port, state="stopped")
    assert (failed, result["changed"]) == (False, False)


def test_a_failed_limit_after_starting_stops_the_server_again(monkeypatch, systemd):
    failed, result = run(monkeypatch, systemd.port, state="started", cache_limit="1G")
    assert failed and "exceeds the maximum" in result["msg"]
    assert result["msg"].endswith("nswapd.service was stopped again")
    assert systemd.changes() == [["start", "nswapd.service"], ["stop", "nswapd.service"]]
    assert not systemd.active()


def test_a_failing_start_is_reported(monkeypatch, systemd):
    def broken(self, args, **kw):
        if args[1] == "start":
            return 1, "", "Job for nswapd.service failed."
        return systemd.run_command(self, args)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", broken)
    failed, result = run(monkeypatch, systemd.port, state="started")
    assert failed
    assert result["msg"] == (
        "systemctl start nswapd.service failed (rc=1): Job for nswapd.service failed.; "
        "see journalctl -u nswapd.service"
    )


def put_pages(port, count, cid=0x52):
    with proto.Client("127.0.0.1", port, timeout=5) as c:
        c.hello(cid)
        for slot in range(count):
            assert c.put(slot, 1, bytes([slot]) * proto.PAGE_SIZE) == proto.OK


def test_restart_of_a_server_holding_pages_is_refused(monkeypatch, systemd):
    assert not run(monkeypatch, systemd.port, state="started")[0]
    put_pages(systemd.port, 3)
    pid = systemd.server.proc.pid
    for check_mode in (True, False):
        failed, result = run(monkeypatch, systemd.port, check_mode=check_mode, state="restarted")
        assert failed, result
        assert result["msg"].startswith(
            "refusing to restart nswapd.service: nswapd on 127.0.0.1:%d holds 12 KiB (3 pages) "
            "of clients' swap" % systemd.port
        ), result["msg"]
        assert "Drain the server first" in result["msg"]
        assert "allow_restart_with_pages=true" in result["msg"]
    assert systemd.changes() == [["start", "nswapd.service"]]
    assert systemd.server.proc.pid == pid
    assert util.read_status("127.0.0.1", systemd.port, 5).used_pages == 3


def test_restart_with_pages_when_allowed_and_without_pages(monkeypatch, systemd):
    assert not run(monkeypatch, systemd.port, state="started")[0]
    failed, result = run(monkeypatch, systemd.port, state="restarted")  # no pages: restarts
    assert not failed and result["changed"] is True, result
    put_pages(systemd.port, 2)
    failed, result = run(
        monkeypatch, systemd.port, state="restarted", allow_restart_with_pages=True
    )
    assert not failed, result
    assert result["status"]["used_pages"] == 0  # the pages went with the old process
    assert systemd.starts == 3


def test_a_stopped_server_is_restarted_without_asking(monkeypatch, systemd):
    failed, result = run(monkeypatch, systemd.port, state="restarted")
    assert not failed and result["changed"] is True, result
    assert systemd.starts == 1


def test_a_server_on_a_node_address_is_reached_from_loopback():
    assert util.loopback_source("127.0.0.1") is None
    assert util.loopback_source("::1") is None
    assert util.loopback_source("localhost") is None
    assert util.loopback_source("10.77.0.12") == ("127.0.0.1", 0)
    assert util.loopback_source("fd00::5") == ("::1", 0)


# --- drain (state=drained) ---------------------------------------------------------


def drop_pages_later(port, count, cid=0x52, delay=1.0):
    """What clients do once their pages moved: INVALIDATE them here, after `delay` s."""

    def drop():
        time.sleep(delay)
        with proto.Client("127.0.0.1", port, timeout=5) as c:
            c.hello(cid)
            for slot in range(count):
                assert c.invalidate(slot, 1) == proto.OK

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    return thread


def test_a_drain_waits_until_the_server_holds_no_page(monkeypatch, systemd):
    assert not run(monkeypatch, systemd.port, state="started")[0]
    put_pages(systemd.port, 3)
    thread = drop_pages_later(systemd.port, 3)
    failed, result = run(monkeypatch, systemd.port, diff=True, state="drained")
    thread.join(timeout=10)
    assert not failed, result
    assert result["changed"] is True and result["cache_limit"] == 0
    assert result["actions"] == ["drain: cache limit 16 -> 0 pages, wait for 3 pages to move away"]
    st = result["status"]
    assert (st["used_pages"], st["limit_pages"], st["draining"]) == (0, 0, True)
    assert result["diff"]["after"].startswith("state: active\ncache_limit: 0 ")
    # drained already: nothing to do; a restart is no longer refused, and ends the drain
    failed, result = run(monkeypatch, systemd.port, state="drained")
    assert (failed, result["changed"], result["actions"]) == (False, False, [])
    failed, result = run(monkeypatch, systemd.port, state="restarted")
    assert not failed and result["status"]["draining"] is False, result


def test_a_drain_that_times_out_puts_the_limit_back_and_names_what_is_left(monkeypatch, systemd):
    assert not run(monkeypatch, systemd.port, state="started")[0]
    put_pages(systemd.port, 3)
    failed, result = run(monkeypatch, systemd.port, state="drained", drain_timeout=1)
    assert failed, result
    assert result["msg"].startswith(
        "drain of nswapd on 127.0.0.1:%d: 3 of 3 pages still there after 1 s" % systemd.port
    ), result["msg"]
    assert "only with gossip on" in result["msg"] and "migration" in result["msg"]
    assert result["msg"].endswith("The cache limit is back at 16 pages"), result["msg"]
    st = util.read_status("127.0.0.1", systemd.port, 5)
    assert (st.limit_pages, st.used_pages, st.state_flags) == (PAGES, 3, 0)


def test_drain_in_check_mode_and_of_a_stopped_server(monkeypatch, systemd):
    failed, result = run(monkeypatch, systemd.port, state="drained")  # stopped: holds nothing
    assert (failed, result["changed"], result["state"]) == (False, False, "inactive")
    assert systemd.changes() == []
    assert not run(monkeypatch, systemd.port, state="started")[0]
    put_pages(systemd.port, 2)
    failed, result = run(monkeypatch, systemd.port, check_mode=True, state="drained")
    assert not failed and result["changed"] is True and result["cache_limit"] == 0, result
    assert limit_now(systemd.port) == PAGES  # nothing sent
