# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's link and disk measurements on the client, with Debian's tools.

    python3 nswap_bench_measure.py link ADDRESS --iperf3-port P --sockperf-port Q --seconds 3
    python3 nswap_bench_measure.py disk DEVICE --size-mib N --seconds 3

link: iperf3 (one TCP stream for SECONDS: the link's capacity, MB/s at the receiver)
and sockperf ping-pong over TCP with 4096-byte messages, which the server echoes whole
(the 4 KiB request/response round trip: median, mean, p99 in microseconds).  The
servers (``iperf3 -s``, ``sockperf server --tcp``) must already listen on ADDRESS.

disk: fio, direct I/O with psync on DEVICE, four jobs one after the other for SECONDS
each: 1 MiB sequential writes and reads, 4 KiB random writes and reads (queue depth 1).
DESTROYS the device's contents.

Prints one JSON line with the numbers and the tools' own summaries; exits 1 with the
tool's message when a tool fails or its output cannot be read.  Python 3 standard
library only: it runs on the bare node.
"""

import argparse
import json
import re
import subprocess
import sys

# sockperf prints its statistics as text (with terminal colour codes even into a pipe).
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SOCKPERF_PERCENTILE = re.compile(r"percentile\s+([0-9.]+)\s*=\s*([0-9.]+)")
SOCKPERF_AVG = re.compile(r"avg-rtt=([0-9.]+)")
SOCKPERF_COUNT = re.compile(r"Total\s+(\d+)\s+observations")
FIO_JOBS = ("seq-write", "seq-read", "rand-write", "rand-read")


class MeasureError(Exception):
    pass


def parse_iperf3(text):
    """iperf3 -J of a TCP client run -> {stream_mbs, retransmits, seconds}."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise MeasureError("iperf3 -J printed no JSON (%s): %r" % (err, text[:300])) from err
    if data.get("error"):
        raise MeasureError("iperf3: %s" % data["error"])
    try:
        received = data["end"]["sum_received"]
        sent = data["end"]["sum_sent"]
    except KeyError as err:
        raise MeasureError("iperf3 JSON has no end.%s (a UDP or aborted run?)" % err) from err
    if received["bits_per_second"] <= 0:
        raise MeasureError("iperf3 received nothing in %.1f s" % received["seconds"])
    return {
        "stream_mbs": round(received["bits_per_second"] / 8 / 1e6, 3),
        "bytes": received["bytes"],
        "seconds": round(received["seconds"], 3),
        "retransmits": sent.get("retransmits"),
    }


def parse_sockperf(text):
    """sockperf ping-pong --full-rtt output -> {rtt_4k_us (p50), mean, p99, observations}."""
    text = ANSI.sub("", text)
    percentiles = {float(p): float(v) for p, v in SOCKPERF_PERCENTILE.findall(text)}
    avg, count = SOCKPERF_AVG.search(text), SOCKPERF_COUNT.search(text)
    if "avg-rtt" not in text:
        # without --full-rtt sockperf prints half the round trip ("avg-lat"): refuse it
        raise MeasureError("sockperf output has no avg-rtt (run with --full-rtt): %r" % text[-300:])
    if avg is None or count is None or 50.0 not in percentiles or 99.0 not in percentiles:
        raise MeasureError("sockperf output without its statistics: %r" % text[-500:])
    if int(count.group(1)) == 0 or percentiles[50.0] <= 0:
        raise MeasureError("sockperf measured no round trip: %r" % text[-500:])
    return {
        "rtt_4k_us": percentiles[50.0],
        "rtt_4k_us_mean": float(avg.group(1)),
        "rtt_4k_us_p99": percentiles[99.0],
        "observations": int(count.group(1)),
    }


def parse_fio(text):
    """fio --output-format=json of the four jobs -> MB/s and IOPS per job."""
    start = text.find("{")  # fio may print notes before the JSON
    try:
        data = json.loads(text[start:]) if start >= 0 else None
    except ValueError as err:
        raise MeasureError("fio printed no JSON (%s): %r" % (err, text[:300])) from err
    if data is None:
        raise MeasureError("fio printed no JSON: %r" % text[:300])
    jobs = {job["jobname"]: job for job in data.get("jobs", [])}
    missing = [name for name in FIO_JOBS if name not in jobs]
    if missing:
        raise MeasureError("fio JSON lacks the job(s) %s" % ", ".join(missing))
    for name, job in jobs.items():
        if job.get("error"):
            raise MeasureError("fio job %s failed with error %d" % (name, job["error"]))
    result = {
        "seq_write_mbs": round(jobs["seq-write"]["write"]["bw_bytes"] / 1e6, 1),
        "seq_mbs": round(jobs["seq-read"]["read"]["bw_bytes"] / 1e6, 1),
        "rand_4k_write_iops": round(jobs["rand-write"]["write"]["iops"]),
        "rand_4k_iops": round(jobs["rand-read"]["read"]["iops"]),
    }
    zero = [key for key, value in result.items() if value <= 0]
    if zero:
        raise MeasureError("fio measured nothing for %s" % ", ".join(zero))
    return result


def _run(argv, timeout):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as err:
        raise MeasureError("%s is not installed: %s" % (argv[0], err)) from err
    except subprocess.TimeoutExpired as err:
        raise MeasureError("%s did not finish in %d s" % (" ".join(argv), timeout)) from err
    if proc.returncode != 0:
        raise MeasureError(
            "%s failed (exit %d): %s"
            % (" ".join(argv), proc.returncode, (proc.stderr or proc.stdout).strip()[-800:])
        )
    return proc.stdout


def iperf3_argv(address, port, seconds):
    return ["iperf3", "--client", address, "--port", str(port), "--time", str(seconds), "--json"]


def sockperf_argv(address, port, seconds):
    return [
        "sockperf", "ping-pong", "--tcp", "-i", address, "-p", str(port),
        "--msg-size", "4096", "--time", str(seconds), "--full-rtt",
    ]  # fmt: skip


def fio_argv(device, size_mib, seconds):
    argv = [
        "fio", "--output-format=json", "--filename=%s" % device, "--direct=1",
        "--ioengine=psync", "--time_based", "--runtime=%d" % seconds,
        "--size=%dM" % size_mib, "--stonewall",
    ]  # fmt: skip
    for name, mode, block in (
        ("seq-write", "write", "1M"),
        ("seq-read", "read", "1M"),
        ("rand-write", "randwrite", "4k"),
        ("rand-read", "randread", "4k"),
    ):
        argv += ["--name=%s" % name, "--rw=%s" % mode, "--bs=%s" % block]
    return argv


def measure_link(address, iperf3_port, sockperf_port, seconds):
    stream = parse_iperf3(_run(iperf3_argv(address, iperf3_port, seconds), seconds + 60))
    rtt = parse_sockperf(_run(sockperf_argv(address, sockperf_port, seconds), seconds + 60))
    return dict(stream_mbs=stream["stream_mbs"], **rtt, stream=stream, seconds=seconds)


def measure_disk(device, size_mib, seconds):
    result = parse_fio(_run(fio_argv(device, size_mib, seconds), 4 * seconds + 120))
    return dict(result, fio_runtime_s=seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="what", required=True)
    link = sub.add_parser("link")
    link.add_argument("address")
    link.add_argument("--iperf3-port", type=int, required=True)
    link.add_argument("--sockperf-port", type=int, required=True)
    link.add_argument("--seconds", type=int, default=3)
    disk = sub.add_parser("disk")
    disk.add_argument("device")
    disk.add_argument("--size-mib", type=int, required=True)
    disk.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.seconds < 1:
        parser.error("--seconds must be 1 or more")
    try:
        if args.what == "link":
            result = measure_link(args.address, args.iperf3_port, args.sockperf_port, args.seconds)
        else:
            result = measure_disk(args.device, args.size_mib, args.seconds)
    except MeasureError as err:
        print("measure %s: %s" % (args.what, err), file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
