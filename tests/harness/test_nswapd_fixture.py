"""The one nswapd fixture (harness/nswapd.py): what it says when nswapd cannot start or
cannot be found.  Its normal use is exercised by tests/integration/test_nswapd.py."""

import time

import pytest

from harness import nswapd


def test_a_server_that_exits_at_start_is_reported_at_once_with_its_output(nswapd_bin):
    started = time.monotonic()
    with pytest.raises(nswapd.NswapdError, match="exited with status 2 at start") as info:
        nswapd.Nswapd(nswapd_bin, "--cache-size", "12X")
    assert "--cache-size: '12X' is not a size" in str(info.value)
    assert time.monotonic() - started < nswapd.START_TIMEOUT_S / 2  # not a timeout


def test_running_stops_the_server_and_keeps_its_log(nswapd_bin):
    with nswapd.running(nswapd_bin, "--cache-size", "64K", "--name", "fixture") as server:
        assert server.status()["capacity_pages"] == 16
        assert server.alive()
    assert not server.alive() and server.proc.returncode == 0
    assert "'fixture' listening on 127.0.0.1:%d" % server.port in server.log_text()


def test_nswapd_bin_must_name_an_executable(monkeypatch, tmp_path):
    monkeypatch.setenv("NSWAPD_BIN", str(tmp_path / "missing"))
    with pytest.raises(nswapd.NswapdError, match="NSWAPD_BIN=.*missing is not an executable"):
        nswapd.build()
