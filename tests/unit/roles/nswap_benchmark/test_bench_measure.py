"""The benchmark's link and disk measurements (roles/nswap_benchmark/files/
nswap_bench_measure.py): the parsers on output captured from iperf3 3.12, sockperf 3.7 and
fio 3.33 (Debian 12) on loopback, and the whole script against the real tools where they
are installed."""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests import REPO

SCRIPT = os.path.join(REPO, "roles", "nswap_benchmark", "files", "nswap_bench_measure.py")

# Trimmed to the parts the parser reads; the numbers are as measured.
IPERF3 = json.dumps(
    {
        "end": {
            "sum_sent": {
                "start": 0,
                "end": 3.001635,
                "seconds": 3.001635,
                "bytes": 2801008640,
                "bits_per_second": 7465287791.486974,
                "retransmits": 9,
                "sender": True,
            },
            "sum_received": {
                "start": 0,
                "end": 3.001681,
                "seconds": 3.001681,
                "bytes": 2801008640,
                "bits_per_second": 7465173387.84501,
                "sender": True,
            },
        }
    }
)
SOCKPERF = (
    "sockperf: \x1b[2;35m== version #3.7-no.git == \x1b[0m\n"
    "sockperf[CLIENT] send on:sockperf: using recvfrom() to block on socket(s)\n"
    "\n"
    "[ 0] IP = 127.0.0.1       PORT = 17497 # TCP\n"
    "sockperf: Warmup stage (sending a few dummy messages)...\n"
    "sockperf: Starting test...\n"
    "sockperf: Test end (interrupted by timer)\n"
    "sockperf: Test ended\n"
    "sockperf: [Total Run] RunTime=1.000 sec; Warm up time=400 msec; "
    "SentMessages=25283; ReceivedMessages=25282\n"
    "sockperf: ========= Printing statistics for Server No: 0\n"
    "sockperf: [Valid Duration] RunTime=0.550 sec; SentMessages=8935; ReceivedMessages=8935\n"
    "sockperf: \x1b[2;35m====> avg-rtt=61.552 (std-dev=45.849)\x1b[0m\n"
    "sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0\n"
    "sockperf: Summary: Round trip is 61.552 usec\n"
    "sockperf: \x1b[2;35mTotal 8935 observations\x1b[0m; "
    "each percentile contains 89.35 observations\n"
    "sockperf: ---> <MAX> observation = 2261.649\n"
    "sockperf: ---> percentile 99.999 = 2261.649\n"
    "sockperf: ---> percentile 99.990 = 1810.185\n"
    "sockperf: ---> percentile 99.900 =  623.064\n"
    "sockperf: ---> percentile 99.000 =  130.844\n"
    "sockperf: ---> percentile 90.000 =   80.859\n"
    "sockperf: ---> percentile 75.000 =   69.322\n"
    "sockperf: ---> percentile 50.000 =   61.030\n"
    "sockperf: ---> percentile 25.000 =   52.257\n"
    "sockperf: ---> <MIN> observation =   14.371\n"
)
FIO = json.dumps(
    {
        "fio version": "fio-3.33",
        "jobs": [
            {
                "jobname": "seq-write",
                "error": 0,
                "read": {"bw_bytes": 0, "iops": 0.0},
                "write": {"bw_bytes": 1886598777, "iops": 1799.200799},
            },
            {
                "jobname": "seq-read",
                "error": 0,
                "read": {"bw_bytes": 938585510, "iops": 895.104895},
                "write": {"bw_bytes": 0, "iops": 0.0},
            },
            {
                "jobname": "rand-write",
                "error": 0,
                "read": {"bw_bytes": 0, "iops": 0.0},
                "write": {"bw_bytes": 41647440, "iops": 10167.832168},
            },
            {
                "jobname": "rand-read",
                "error": 0,
                "read": {"bw_bytes": 39593302, "iops": 9666.333666},
                "write": {"bw_bytes": 0, "iops": 0.0},
            },
        ],
    }
)


@pytest.fixture(scope="module")
def measure():
    spec = importlib.util.spec_from_file_location("nswap_bench_measure", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_iperf3_receiver_rate_in_mb_per_s(measure):
    result = measure.parse_iperf3(IPERF3)
    assert result["stream_mbs"] == pytest.approx(7465173387.84501 / 8 / 1e6, abs=1e-3)
    assert result["bytes"] == 2801008640 and result["retransmits"] == 9


def test_iperf3_errors_are_named(measure):
    with pytest.raises(measure.MeasureError, match="unable to connect"):
        measure.parse_iperf3(json.dumps({"start": {}, "error": "unable to connect to server"}))
    with pytest.raises(measure.MeasureError, match="printed no JSON"):
        measure.parse_iperf3("iperf3: error")
    with pytest.raises(measure.MeasureError, match="no end"):
        measure.parse_iperf3(json.dumps({"end": {}}))


def test_sockperf_round_trip_percentiles(measure):
    result = measure.parse_sockperf(SOCKPERF)
    assert result == {
        "rtt_4k_us": 61.030,
        "rtt_4k_us_mean": 61.552,
        "rtt_4k_us_p99": 130.844,
        "observations": 8935,
    }


def test_sockperf_half_round_trip_output_is_refused(measure):
    half = SOCKPERF.replace("avg-rtt", "avg-latency")
    with pytest.raises(measure.MeasureError, match="--full-rtt"):
        measure.parse_sockperf(half)
    with pytest.raises(measure.MeasureError, match="without its statistics"):
        measure.parse_sockperf("sockperf: avg-rtt=1.0\n")


def test_fio_four_jobs(measure):
    assert measure.parse_fio("note: both iodepth >= 1 and synchronous I/O engine\n" + FIO) == {
        "seq_write_mbs": 1886.6,
        "seq_mbs": 938.6,
        "rand_4k_write_iops": 10168,
        "rand_4k_iops": 9666,
    }


def test_fio_missing_or_failed_job(measure):
    data = json.loads(FIO)
    data["jobs"] = data["jobs"][:3]
    with pytest.raises(measure.MeasureError, match="lacks the job.s. rand-read"):
        measure.parse_fio(json.dumps(data))
    data = json.loads(FIO)
    data["jobs"][1]["error"] = 5
    with pytest.raises(measure.MeasureError, match="seq-read failed with error 5"):
        measure.parse_fio(json.dumps(data))
    data = json.loads(FIO)
    data["jobs"][3]["read"]["iops"] = 0
    with pytest.raises(measure.MeasureError, match="nothing for rand_4k_iops"):
        measure.parse_fio(json.dumps(data))


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port, proc):
    for _ in range(100):
        if proc.poll() is not None:
            raise AssertionError("server exited: %s" % proc.stderr.read())
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("nothing listens on %d" % port)


@pytest.mark.skipif(
    not (shutil.which("iperf3") and shutil.which("sockperf")), reason="iperf3 and sockperf needed"
)
def test_link_on_loopback_with_the_real_tools():
    iperf3_port, sockperf_port = _free_port(), _free_port()
    servers = [
        subprocess.Popen(
            ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(iperf3_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ),
        subprocess.Popen(
            ["sockperf", "server", "--tcp", "-i", "127.0.0.1", "-p", str(sockperf_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ),
    ]  # fmt: skip
    try:
        _wait_listening(iperf3_port, servers[0])
        _wait_listening(sockperf_port, servers[1])
        proc = subprocess.run(
            [sys.executable, SCRIPT, "link", "127.0.0.1", "--iperf3-port", str(iperf3_port)]
            + ["--sockperf-port", str(sockperf_port), "--seconds", "1"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["stream_mbs"] > 0 and result["observations"] > 100
    assert 0 < result["rtt_4k_us"] <= result["rtt_4k_us_p99"]


def test_link_without_a_server_fails_with_the_tools_message():
    if not shutil.which("iperf3"):
        pytest.skip("iperf3 needed")
    port = _free_port()
    proc = subprocess.run(
        [sys.executable, SCRIPT, "link", "127.0.0.1", "--iperf3-port", str(port)]
        + ["--sockperf-port", str(port), "--seconds", "1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "measure link: iperf3" in proc.stderr and "connect" in proc.stderr


@pytest.mark.skipif(not shutil.which("fio"), reason="fio needed")
def test_disk_on_a_file_with_the_real_fio(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    os.truncate(image, 64 << 20)
    proc = subprocess.run(
        [sys.executable, SCRIPT, "disk", str(image), "--size-mib", "32", "--seconds", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0 and "O_DIRECT" in proc.stderr + proc.stdout:
        pytest.skip("this file system has no O_DIRECT")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["seq_mbs"] > 0 and result["rand_4k_iops"] > 0 and result["fio_runtime_s"] == 1
