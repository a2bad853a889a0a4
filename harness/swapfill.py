#!/usr/bin/env python3
"""Runs on a lab node (copied there by the molecule verifiers): pushes a measured amount of
memory out to an nswap device, then holds it; optionally checks every byte of it later.

It allocates 4 MiB at a time and touches every page until the kernel has put
--swapped-kib more on /dev/DEVICE than when it started (/proc/swaps' Used column), or
stops at --cap-kib allocated (default MemTotal + 256 MiB) and says "cap".  A target
measured on the node, not a size guessed up front: "MemAvailable + 96 MiB" once pushed
only 9,627 pages out, because other processes freed memory meanwhile.

With --verify-on FILE each page holds its own pattern (its number and this run's seed
in its first 16 bytes, zeros after); once FILE exists every page is compared in full,
the outcome written to --result, and the program ends.  Files are written whole (a
reader never sees half of one).  Only the standard library: the nodes have python3.

  swapfill.py --device nswap0 --swapped-kib 114688 --ready /run/fill.ready
"""

import argparse
import os
import struct
import time

CHUNK = 4 << 20
PAGE = 4096


def swapped_kib(device):
    """KiB of swap in use on /dev/DEVICE (0 when it is not an active swap area)."""
    with open("/proc/swaps") as handle:
        for line in handle.read().splitlines()[1:]:
            fields = line.split()
            if fields[0] == "/dev/" + device:
                return int(fields[3])
    return 0


def mem_total_kib():
    with open("/proc/meminfo") as handle:
        return int(handle.read().split()[1])


def page_of(number, seed):
    return struct.pack("<QQ", number, seed) + bytes(PAGE - 16)


def fill(device, target_kib, cap_kib, seed):
    """(chunks, state, KiB swapped meanwhile): state is "done" or "cap"."""
    start, chunks = swapped_kib(device), []
    while len(chunks) * (CHUNK // 1024) < cap_kib:
        chunk = bytearray(CHUNK)
        first = len(chunks) * (CHUNK // PAGE)
        for i in range(CHUNK // PAGE):
            if seed is None:
                chunk[i * PAGE] = 1
            else:
                chunk[i * PAGE : i * PAGE + 16] = struct.pack("<QQ", first + i, seed)
        chunks.append(chunk)
        if swapped_kib(device) - start >= target_kib:
            return chunks, "done", swapped_kib(device) - start
    return chunks, "cap", swapped_kib(device) - start


def write_whole(path, text):
    """PATH holds TEXT or does not exist yet: written beside it, then renamed."""
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def verify(chunks, seed):
    """(pages, pages that differ, the first few of those)."""
    bad = []
    per = CHUNK // PAGE
    for c, chunk in enumerate(chunks):
        for i in range(per):
            if chunk[i * PAGE : (i + 1) * PAGE] != page_of(c * per + i, seed):
                bad.append(c * per + i)
    return len(chunks) * per, len(bad), bad[:5]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="nswap0")
    parser.add_argument("--swapped-kib", type=int, required=True)
    parser.add_argument("--cap-kib", type=int, help="default: MemTotal + 256 MiB")
    parser.add_argument("--ready", required=True, help="written once filled: state and amounts")
    parser.add_argument("--verify-on", help="check every page once this file exists")
    parser.add_argument("--result", help="the check's outcome (with --verify-on)")
    parser.add_argument("--hold-s", type=float, default=600, help="then exit")
    args = parser.parse_args()
    cap = args.cap_kib or mem_total_kib() + 256 * 1024
    seed = int.from_bytes(os.urandom(8), "little") if args.verify_on else None
    chunks, state, swapped = fill(args.device, args.swapped_kib, cap, seed)
    write_whole(args.ready, "%s %d KiB swapped, %d MiB held" % (state, swapped, len(chunks) * 4))
    deadline = time.monotonic() + args.hold_s
    while time.monotonic() < deadline:
        if args.verify_on and os.path.exists(args.verify_on):
            pages, bad, first = verify(chunks, seed)
            write_whole(args.result, "%d pages checked, %d differ %s" % (pages, bad, first))
            return
        time.sleep(1)


if __name__ == "__main__":
    main()
