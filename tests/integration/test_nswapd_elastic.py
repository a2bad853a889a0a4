"""nswapd's elastic cache (elastic = on, src/nswapd/elastic.h): the cache limit follows the
node's memory, read from files the test writes in place of /proc/meminfo and
/proc/pressure/memory (--meminfo-file, --pressure-file).

Cache 64 pages, step 8 pages (32K), reserve 1 MiB, a check every 20 ms.
"""

import random
import re
import subprocess
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

PAGE = proto.PAGE_SIZE
WAIT_S = 10.0
ELASTIC = [
    "--cache-size", "256K", "--elastic", "on", "--elastic-step", "32K",
    "--elastic-reserve", "1M", "--elastic-interval", "20",
]  # fmt: skip
CAPACITY = 64
STEP = 8
MIB_KB = 1024


def page(slot):
    return random.Random("elastic/%d" % slot).randbytes(PAGE)


class Node:
    """The fake /proc files of one nswapd."""

    def __init__(self, tmp_path):
        self.meminfo = tmp_path / "meminfo"
        self.pressure = tmp_path / "pressure"
        self.set(avail_kb=64 * MIB_KB, stall=0.0)

    def set(self, avail_kb=None, stall=None):
        if avail_kb is not None:
            self._replace(
                self.meminfo,
                "MemTotal:        8000000 kB\nMemFree:         100 kB\n"
                "MemAvailable:    %d kB\nBuffers:         0 kB\n" % avail_kb,
            )
        if stall is not None:
            self._replace(
                self.pressure,
                "some avg10=%.2f avg60=0.00 avg300=0.00 total=1\n"
                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" % stall,
            )

    @staticmethod
    def _replace(path, text):
        """Written whole and renamed over, as the kernel's files never show half a line."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path)


def wait_limit(srv, check, what):
    deadline = time.monotonic() + WAIT_S
    while True:
        st = srv.status()
        if check(st["limit_pages"]):
            return st
        if time.monotonic() > deadline:
            raise AssertionError(
                "%s: limit %d after %.0f s\n%s"
                % (what, st["limit_pages"], WAIT_S, srv.log_text()[-3000:])
            )
        time.sleep(0.02)


def start(start_server, node, *extra):
    return start_server(
        *ELASTIC, "--meminfo-file", node.meminfo, "--pressure-file", node.pressure, *extra
    )


def test_grows_a_step_at_a_time_while_idle_and_shrinks_under_pressure(start_server, node):
    srv = start(start_server, node)
    assert srv.wait_log(r"elastic: cache limit starts at 8 of 64 pages; reserve 1 MiB")
    wait_limit(srv, lambda n: n == CAPACITY, "idle node grows to cache_size")
    grows = re.findall(r"elastic: cache limit (\d+) -> (\d+) pages", srv.log_text())
    assert grows == [(str(n), str(n + STEP)) for n in range(STEP, CAPACITY, STEP)], grows

    # MemAvailable 200 KiB short of the reserve: the limit drops to what is used, less the
    # shortfall (at least a step), and never below one page: nothing is used here
    node.set(avail_kb=MIB_KB - 200)
    assert srv.wait_log(
        r"cache limit 64 -> 1 pages \(MemAvailable 0 MiB is below the reserve 1 MiB"
    )
    assert srv.status()["limit_pages"] == 1

    # room again, but hysteresis: no growth within ELASTIC_HOLD_TICKS (10) ticks of a shrink,
    # and only with a step and a half above the reserve, counting the room already promised
    # (limit - used pages) as spent
    node.set(avail_kb=MIB_KB + 40)  # 40 KiB over: less than 48 + 4
    time.sleep(0.5)
    assert srv.status()["limit_pages"] == 1
    node.set(avail_kb=MIB_KB + 64)
    wait_limit(srv, lambda n: n > 1, "grows again after the hold")
    assert srv.wait_log(r"cache limit 1 -> 9 pages \(MemAvailable 1 MiB, reserve 1 MiB")
    # 9 pages promised, none used: 64 - 36 KiB over the reserve is less than a step and a half
    time.sleep(0.5)
    assert srv.status()["limit_pages"] == 9


def test_a_memory_stall_shrinks_even_with_memory_available(start_server, node):
    srv = start(start_server, node, "--elastic-psi", "20")
    wait_limit(srv, lambda n: n == CAPACITY, "grows")
    node.set(stall=25.5)
    wait_limit(srv, lambda n: n <= CAPACITY - STEP, "a stall shrinks")
    assert srv.wait_log(r"memory stall 25\.50% is above 20\.00%")
    # between half the threshold and the threshold: neither grows nor shrinks
    node.set(stall=15.0)
    time.sleep(0.1)  # a tick that read the old file before the change has ended
    settled = srv.status()["limit_pages"]
    time.sleep(0.6)
    assert srv.status()["limit_pages"] == settled


def test_shrinking_keeps_every_page_and_refuses_new_ones(start_server, node):
    srv = start(start_server, node)
    wait_limit(srv, lambda n: n == CAPACITY, "grows")
    cid = 0xE1
    with srv.client(cid) as c:
        for s in range(40):
            assert c.put(s, 1, page(s)) == proto.OK
        node.set(avail_kb=100)
        wait_limit(srv, lambda n: n == 1, "shrinks under the pages")
        assert srv.wait_log(r"40 in use, kept: new pages are refused until use falls")
        assert c.put(40, 1, page(40)) == proto.ENOSPC
        for s in range(40):
            assert c.get(s, 1) == (proto.OK, page(s))
        st = c.status()
        assert (st.used_pages, st.state_flags) == (40, proto.STATE_OVER_LIMIT)


def test_set_cache_limit_is_refused_while_elastic(start_server, node):
    srv = start(start_server, node)
    with srv.client() as ctl:
        status, st = ctl.set_cache_limit(4)
        assert status == proto.EINVAL and st.limit_pages != 4
    assert srv.wait_log(r"SET_CACHE_LIMIT 4 pages refused: elastic = on moves the limit")


def test_unreadable_files_are_warned_of_once_and_change_nothing(start_server, node):
    srv = start(start_server, node)
    wait_limit(srv, lambda n: n == CAPACITY, "grows")
    node.meminfo.unlink()
    node.pressure.write_text("nothing useful\n")
    time.sleep(0.5)
    log = srv.log_text()
    assert log.count("elastic: cannot read MemAvailable from %s: No such file" % node.meminfo) == 1
    assert srv.status()["limit_pages"] == CAPACITY
    node.set(avail_kb=100)
    wait_limit(srv, lambda n: n < CAPACITY, "shrinks once readable")
    log = srv.log_text()
    assert "elastic: MemAvailable readable again" in log
    assert (
        log.count("cannot read the memory stall (PSI) from %s: no such line" % node.pressure) == 1
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--elastic", "perhaps"], "--elastic: 'perhaps' is not a boolean"),
        (["--elastic-step", "100"], "--elastic-step: '100' is too small"),
        (["--elastic-reserve", "lots"], "--elastic-reserve: 'lots' is not a size"),
        (["--elastic-psi", "0"], "--elastic-psi: '0' is not a percentage"),
        (["--elastic-psi", "101"], "--elastic-psi: '101' is not a percentage"),
        (["--elastic-psi", "nan"], "--elastic-psi: 'nan' is not a percentage"),
        (["--elastic-interval", "5"], "--elastic-interval: '5' is not a number of milliseconds"),
        (["--meminfo-file", "meminfo"], "--meminfo-file: 'meminfo' is not an absolute path"),
        (["--pressure-file", "p"], "--pressure-file: 'p' is not an absolute path"),
    ],
)
def test_bad_elastic_settings_exit_2(nswapd_bin, args, message):
    r = subprocess.run(
        [nswapd_bin, "--foreground", *args], capture_output=True, text=True, timeout=10, check=False
    )
    assert r.returncode == 2 and message in r.stderr and r.stdout == "", r.stderr


def test_elastic_with_a_locked_cache_is_refused(nswapd_bin, tmp_path):
    conf = tmp_path / "nswapd.conf"
    conf.write_text("elastic = on\nlock_memory = yes\n")
    r = subprocess.run(
        [nswapd_bin, "-c", conf, "--check-config"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 2, r.stderr
    assert "elastic = on with lock_memory = yes: a locked cache cannot give memory back" in r.stderr
