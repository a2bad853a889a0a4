# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shrink of the benchmark's nswap-3-shrink runs: a server's cache shrinks mid-run.

Runs on that server beside its nswapd, started before the run: reads nswapd's STATUS every
--poll-s seconds until it holds at least --when-used pages, then sets its cache limit to
--fraction of the pages it holds (SET_CACHE_LIMIT, taken only from loopback, so the
connection's source is 127.0.0.1).  nswapd, with gossip on, then moves the pages over the
limit to the other servers, and the client follows (the migrations the report counts).
With --reset it first puts the limit back to the cache size (a shrink of the last run in
the same setup).  Writes {"shrunk": bool, "at_s", "used_pages", "limit_pages", "error"} to --result
(atomically) and exits 0 either way; exit 2 only for bad arguments.  The run is failed
by the role when nothing shrank: such a run would be an nswap-3 run under another name.
Python 3 standard library plus nswap_protocol.py, which the role puts beside it.
"""

import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nswap_protocol as proto  # noqa: E402  (beside this file on the node)


def fraction(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("%s is not a fraction between 0 and 1" % text)
    return value


def pages(text):
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(
            "%s is not a number of pages of at least 2 (half of it must be fewer)" % text
        )
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="where nswapd listens (this node)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--when-used", type=pages, required=True, help="pages held")
    parser.add_argument("--fraction", type=fraction, default=0.5)
    parser.add_argument("--deadline-s", type=float, required=True)
    parser.add_argument("--poll-s", type=float, default=0.1)
    parser.add_argument("--result", required=True)
    parser.add_argument(
        "--reset", action="store_true", help="first put the limit back to the cache size"
    )
    return parser.parse_args(argv)


def source_for(address):
    """127.0.0.1 as the local end unless nswapd listens on loopback already."""
    return None if address.startswith("127.") else ("127.0.0.1", 0)


def shrink(args, clock=time.monotonic, sleep=time.sleep):
    started = clock()
    result = {"shrunk": False, "at_s": None, "used_pages": None, "limit_pages": None}
    result["error"] = None
    used = 0
    client = proto.Client(args.address, args.port, source_address=source_for(args.address))
    try:
        if args.reset:  # the last run's shrink: this run starts with the whole cache
            status = client.status()
            if status.limit_pages != status.capacity_pages:
                code, _after = client.set_cache_limit(status.capacity_pages)
                if code != proto.OK:
                    result["error"] = "resetting the limit to %d: %s" % (
                        status.capacity_pages,
                        proto.status_name(code),
                    )
                    return result
        while clock() - started < args.deadline_s:
            used = client.status().used_pages
            if used >= args.when_used:
                # below the use, or nothing would be over the limit (at least one page)
                limit = min(max(1, int(used * args.fraction)), used - 1)
                status, _after = client.set_cache_limit(limit)
                result.update(at_s=round(clock() - started, 3), used_pages=used)
                if status == proto.OK:
                    result.update(shrunk=True, limit_pages=limit)
                else:
                    result["error"] = "SET_CACHE_LIMIT %d: %s" % (limit, proto.status_name(status))
                return result
            sleep(args.poll_s)
        result["error"] = "the server never held %d pages in %g s (last %d)" % (
            args.when_used,
            args.deadline_s,
            used,
        )
        return result
    finally:
        client.close()


def write_result(path, result):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(result, handle, sort_keys=True)
    os.replace(tmp, path)


class Stopped(Exception):
    """SIGTERM (systemctl stop after the run): the record still says why nothing shrank."""


def stop(_signum, _frame):
    raise Stopped()


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, stop)
    try:
        result = shrink(args)
    except Stopped:
        result = {"shrunk": False, "at_s": None, "used_pages": None, "limit_pages": None}
        result["error"] = "stopped (the run ended) before the server held %d pages" % (
            args.when_used
        )
    except (OSError, proto.NswapError) as exc:
        result = {"shrunk": False, "at_s": None, "used_pages": None, "limit_pages": None}
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    write_result(args.result, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
