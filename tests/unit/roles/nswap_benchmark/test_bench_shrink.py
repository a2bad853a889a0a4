"""The shrink of the benchmark's nswap-3-shrink runs (roles/nswap_benchmark/files/
nswap_bench_shrink.py), staged as the role stages it (beside nswap_protocol.py), against a
real nswapd on loopback."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from tests import REPO

FILES = os.path.join(REPO, "roles", "nswap_benchmark", "files")
PROTOCOL = os.path.join(REPO, "plugins", "module_utils", "nswap_protocol.py")


@pytest.fixture
def staged(tmp_path):
    """The script and nswap_protocol.py in one folder, as build.yml puts them on the nodes."""
    for path in (os.path.join(FILES, "nswap_bench_shrink.py"), PROTOCOL):
        shutil.copy(path, tmp_path)
    return tmp_path / "nswap_bench_shrink.py"


def start(staged, srv, result, *extra):
    argv = [sys.executable, str(staged), "--address", srv.host, "--port", str(srv.port)]
    argv += ["--result", str(result), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def page(slot):
    return bytes([slot % 251]) * proto.PAGE_SIZE


def test_the_limit_drops_to_half_the_use_once_the_server_holds_enough(
    staged, start_server, tmp_path
):
    srv = start_server("--cache-size", "1M")  # 256 pages
    result = tmp_path / "shrink.json"
    with srv.client() as ctl:  # a shrink of an earlier run, which --reset undoes
        assert ctl.set_cache_limit(100)[0] == proto.OK
    proc = start(staged, srv, result, "--when-used", "40", "--deadline-s", "30", "--reset")
    with srv.client(client_id=0xC1) as client:
        deadline = time.monotonic() + 10
        while srv.status()["limit_pages"] != 256:  # reset first, before any page
            assert time.monotonic() < deadline, srv.status()
            time.sleep(0.05)
        slot = 0
        while proc.poll() is None and slot < 200:
            status = client.put(slot, 1, page(slot))
            if status == proto.ENOSPC:  # shrunk: the limit is now below the use
                break
            assert status == proto.OK
            slot += 1
            time.sleep(0.01)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    done = json.loads(result.read_text())
    assert done["shrunk"] is True and done["error"] is None, done
    assert done["used_pages"] >= 40 and done["limit_pages"] == done["used_pages"] // 2
    assert srv.status()["limit_pages"] == done["limit_pages"]
    assert not (tmp_path / "shrink.json.tmp").exists()


def test_a_server_that_never_fills_is_reported_not_shrunk(staged, start_server, tmp_path):
    srv = start_server("--cache-size", "1M")
    result = tmp_path / "shrink.json"
    proc = start(staged, srv, result, "--when-used", "40", "--deadline-s", "0.5")
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    done = json.loads(result.read_text())
    assert done["shrunk"] is False
    assert done["error"] == "the server never held 40 pages in 0.5 s (last 0)"
    assert srv.status()["limit_pages"] == 256  # untouched


def test_a_stop_before_the_shrink_still_writes_why(staged, start_server, tmp_path):
    """systemctl stop (SIGTERM) once the run ended: the record says nothing shrank, and why."""
    srv = start_server("--cache-size", "1M")
    result = tmp_path / "shrink.json"
    proc = start(staged, srv, result, "--when-used", "40", "--deadline-s", "60")
    time.sleep(1.0)  # started, connected, polling
    assert proc.poll() is None
    proc.terminate()
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    done = json.loads(result.read_text())
    assert done == {
        "shrunk": False,
        "at_s": None,
        "used_pages": None,
        "limit_pages": None,
        "error": "stopped (the run ended) before the server held 40 pages",
    }


def test_no_server_and_bad_arguments(staged, tmp_path):
    result = tmp_path / "shrink.json"
    argv = [sys.executable, str(staged), "--address", "127.0.0.1", "--port", "1"]
    argv += ["--result", str(result), "--when-used", "4", "--deadline-s", "5"]
    assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
    done = json.loads(result.read_text())
    assert done["shrunk"] is False and "ConnectionRefusedError" in done["error"], done
    for bad in (["--fraction", "1.5"], ["--when-used", "1"]):
        proc = subprocess.run(argv + bad, capture_output=True, text=True, check=False)
        assert proc.returncode == 2 and "is not a" in proc.stderr, proc.stderr
