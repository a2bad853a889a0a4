"""nswapd with several event loops (``loops``): connections spread over threads that share
one sharded page cache.  Loopback only, like test_nswapd.py; set NSWAPD_BIN to test
another binary (e.g. a ThreadSanitizer build).  Every loop here is bounded in count and
time.
"""

import random
import signal
import subprocess
import threading
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import nswapd

PAGE = proto.PAGE_SIZE
JOIN_S = 120


def page(client_id, slot, generation=1, writer=0):
    """Deterministic content, distinct for every (client, slot, generation, writer)."""
    return random.Random("%d/%d/%d/%d" % (client_id, slot, generation, writer)).randbytes(PAGE)


def run_threads(target, count):
    """Run ``target(i, barrier)`` in ``count`` threads; the failures, with the thread named."""
    barrier = threading.Barrier(count, timeout=60)
    errors = []

    def run(i):
        try:
            target(i, barrier)
        except Exception as exc:  # reported by the caller
            errors.append("thread %d: %r" % (i, exc))
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
    assert not any(t.is_alive() for t in threads), "threads still running"
    return errors


def test_concurrent_clients_on_four_loops_verify_every_byte(start_server):
    """4 client ids x 3 connections = 12 connections over 4 loops.  Two connections of each
    client write and read the same shared slots at once (same generation, so each PUT
    replaces); every connection also has private slots.  Every byte read back is checked,
    and STATUS must equal the sums of what the clients did."""
    srv = start_server("--loops", "4", "--cache-size", "16M")
    assert srv.wait_log(r"4096 pages \(16 MiB, 16 shards\).* loops 4,"), srv.log_text()
    nclients, per_client, shared, private, rounds = 4, 3, 24, 24, 3
    counts = {"puts": 0, "gets": 0, "get_misses": 0, "invalidates": 0}
    lock = threading.Lock()

    def work(i, barrier):
        cid, writer = 0x70000 + i // per_client, i % per_client
        mine = {"puts": 0, "gets": 0, "get_misses": 0, "invalidates": 0}
        base = 1000 + writer * private
        with srv.client(cid, "c%d" % i) as c:
            if writer == 0:  # the shared slots exist before anyone reads them
                tags = [c.put_frame(s, 1, page(cid, s, 1, writer)) for s in range(shared)]
                assert all(f.status == proto.OK for f in c.wait(tags).values())
                mine["puts"] += shared
            barrier.wait()  # every connection is up: all loops hold some
            for r in range(rounds):
                # Shared slots 0..shared-1: writers 0 and 1 of this client collide.
                if writer < 2:
                    tags = {c.put_frame(s, 1, page(cid, s, 1, writer)): s for s in range(shared)}
                    for frame in c.wait(tags).values():
                        assert frame.status == proto.OK, frame
                    mine["puts"] += shared
                tags = {
                    c.put_frame(s, r + 1, page(cid, s, r + 1, writer)): s
                    for s in range(base, base + private)
                }
                for frame in c.wait(tags).values():
                    assert frame.status == proto.OK, frame
                mine["puts"] += private
                # Read back: private pages exactly; shared ones are one writer's page, whole.
                tags = {c.get_frame(s, r + 1): s for s in range(base, base + private)}
                for tag, frame in c.wait(tags).items():
                    assert frame.status == proto.OK, frame
                    assert frame.payload == page(cid, tags[tag], r + 1, writer), (cid, tags[tag])
                tags = {c.get_frame(s, 1): s for s in range(shared)}
                for tag, frame in c.wait(tags).items():
                    s = tags[tag]
                    assert frame.status == proto.OK, frame
                    assert frame.payload in (page(cid, s, 1, 0), page(cid, s, 1, 1)), (cid, s)
                mine["gets"] += private + shared
                # Drop the older half of the private slots again, one by one and as a range.
                half = private // 2
                for s in range(base, base + half // 2):
                    assert c.invalidate(s) == proto.OK
                assert c.invalidate(base + half // 2, r + 1, count=half - half // 2) == proto.OK
                mine["invalidates"] += half // 2 + 1
                assert c.get(base, r + 1) == (proto.ENOENT, None)
                mine["gets"] += 1
                mine["get_misses"] += 1
            barrier.wait()
        with lock:
            for k, v in mine.items():
                counts[k] += v

    errors = run_threads(work, nclients * per_client)
    assert not errors, errors
    with srv.client() as c:
        st = c.status()
        # closes are seen by each connection's own loop, maybe after this STATUS
        deadline = time.monotonic() + 10
        while c.status().clients and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.status().clients == 0
    half = private // 2
    assert st.used_pages == nclients * (shared + per_client * (private - half))
    assert (st.puts, st.gets, st.get_misses, st.invalidates, st.errors) == (
        counts["puts"],
        counts["gets"],
        counts["get_misses"],
        counts["invalidates"],
        0,
    ), (st, counts)
    # the shared slots hold one writer's page each, whole
    for k in range(nclients):
        cid = 0x70000 + k
        with srv.client(cid) as c:
            for s in range(shared):
                status, data = c.get(s, 1)
                assert status == proto.OK and data in (page(cid, s, 1, 0), page(cid, s, 1, 1))


def test_cache_limit_holds_across_loops(start_server):
    """6 connections on 3 loops fill a 4-shard cache with a 300-page limit at once: exactly
    300 PUTs succeed, the rest get ENOSPC ("full"), and STATUS never shows more pages used
    than the limit."""
    srv = start_server("--loops", "3", "--cache-size", "4M")  # 1024 pages, 4 shards
    limit, nconn, per = 300, 6, 100
    with srv.client() as ctl:
        status, st = ctl.set_cache_limit(limit)
        assert status == proto.OK and st.limit_pages == limit
    results = {}
    stop = threading.Event()
    seen = []

    def poll():
        with srv.client() as c:
            while not stop.is_set():
                seen.append(c.status().used_pages)

    poller = threading.Thread(target=poll)
    poller.start()

    def fill(i, barrier):
        cid = 0x80000 + i
        with srv.client(cid) as c:
            barrier.wait()
            tags = {c.put_frame(s, 1, page(cid, s)): s for s in range(per)}
            got = c.wait(tags)
            results[cid] = {tags[t]: f.status for t, f in got.items()}

    try:
        errors = run_threads(fill, nconn)
    finally:
        stop.set()
        poller.join(JOIN_S)
    assert not errors, errors
    statuses = [st for r in results.values() for st in r.values()]
    assert statuses.count(proto.OK) == limit
    assert statuses.count(proto.ENOSPC) == nconn * per - limit
    assert seen and max(seen) <= limit, max(seen)
    with srv.client() as c:
        st = c.status()
    assert (st.used_pages, st.limit_pages, st.errors) == (limit, limit, nconn * per - limit)
    assert st.puts == limit
    # every page that was accepted is there, byte for byte; the refused ones are not
    for cid, r in results.items():
        with srv.client(cid) as c:
            for s, status in r.items():
                if status == proto.OK:
                    assert c.get(s, 1) == (proto.OK, page(cid, s))
                else:
                    assert c.get(s, 1) == (proto.ENOENT, None)


def test_sigterm_drains_connections_on_every_loop(start_server):
    loops, nconn = 4, 8
    srv = start_server("--loops", str(loops), "--cache-size", "8M")
    clients = [srv.client(0x90000 + i) for i in range(nconn)]
    try:
        assert clients[0].status().clients == nconn  # all handed to their loops
        batches = {}
        for i, c in enumerate(clients):
            cid = 0x90000 + i
            tags = [c.put_frame(s, 1, page(cid, s)) for s in range(32)]
            batches[i] = tags
        srv.signal(signal.SIGTERM)
        for i, c in enumerate(clients):
            replies = c.wait(batches[i])
            assert len(replies) == 32 and all(f.status == proto.OK for f in replies.values())
            with pytest.raises(proto.ConnectionClosed):
                c.recv()
        rc = srv.proc.wait(10)
    finally:
        for c in clients:
            c.close()
    assert rc == 0, srv.log_text()
    assert srv.wait_log(r"SIGTERM: draining %d connections" % nconn)
    assert "drain timeout" not in srv.log_text()
    assert srv.wait_log(r"^nswapd: stopped$")


def run_nswapd(binary, *args, timeout=10):
    return subprocess.run(
        [str(binary), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("value", ["-1", "100000", "x", "65", "2.5", ""])
def test_bad_loops_values_exit_2_naming_the_key(nswapd_bin, tmp_path, value):
    r = run_nswapd(nswapd_bin, "--loops", value, "--foreground", "--listen", "127.0.0.1:0")
    assert r.returncode == 2
    assert r.stderr.startswith(
        "nswapd: --loops: '%s' is not a loop count; use auto, 0 (auto) or an integer 1-64" % value
    ), r.stderr
    conf = tmp_path / "nswapd.conf"
    conf.write_text("listen = 127.0.0.1:0\nloops = %s\n" % value)
    r = run_nswapd(nswapd_bin, "-c", conf, "--foreground")
    assert r.returncode == 2
    assert r.stderr.startswith("nswapd: %s:2: loops: '%s' is not a loop count" % (conf, value))


@pytest.mark.parametrize(("value", "printed"), [("auto", "auto"), ("0", "auto"), ("64", "64")])
def test_loops_values_accepted(nswapd_bin, value, printed):
    r = run_nswapd(nswapd_bin, "--loops", value, "--check-config")
    assert r.returncode == 0, r.stderr
    assert "loops = %s" % printed in r.stdout.splitlines()


@pytest.mark.parametrize(
    ("loops", "size", "shards"),
    [("1", "1G", 1), ("2", "1G", 8), ("64", "1G", 64), ("4", "1M", 1), ("4", "2M", 2)],
)
def test_shard_count(start_server, loops, size, shards):
    # four shards per loop, at most 64, at least 256 pages each; one loop keeps one table
    srv = start_server("--loops", loops, "--cache-size", size)
    assert srv.wait_log(r"MiB, %d shards\).* loops %s," % (shards, loops)), srv.log_text()


def test_second_server_on_the_port_fails_with_loops(nswapd_bin, start_server):
    srv = start_server("--loops", "4")
    r = run_nswapd(nswapd_bin, "--loops", "4", "--listen", "127.0.0.1:%d" % srv.port, "-f")
    assert r.returncode == 1
    assert "cannot listen on 127.0.0.1:%d: Address already in use" % srv.port in r.stderr
    with srv.client(0x5) as c:  # the running server is unaffected
        assert c.put(0, 1, page(5, 0)) == proto.OK
        assert c.get(0, 1) == (proto.OK, page(5, 0))


def test_auto_loops_and_status_log(start_server):
    srv = start_server("--cache-size", "4M")
    m = srv.wait_log(r"loops (\d+),")
    assert m and 1 <= int(m.group(1)) <= 16, srv.log_text()
    with srv.client(0xA0) as c:
        assert c.put(1, 1, page(0xA0, 1)) == proto.OK
        srv.signal(signal.SIGHUP)
        assert srv.wait_log(r"status: .*used_pages 1 clients 1 .*puts 1 .*loops %s" % m.group(1))
        assert c.get(1, 1) == (proto.OK, page(0xA0, 1))


def test_wide_range_invalidate_while_other_loops_write_the_same_shards(start_server):
    """A range INVALIDATE wider than a quarter of the cache scans every shard's table under
    its lock; other connections keep inserting into the same shards meanwhile.  Only the
    invalidating client's pages go; everybody else's stay, byte for byte."""
    srv = start_server("--loops", "3", "--cache-size", "4M")  # 1024 pages, 4 shards
    rounds, npages = 8, 100

    def work(i, barrier):
        cid = 0xB0000 + i
        with srv.client(cid) as c:
            barrier.wait()
            for r in range(rounds):
                gen = r + 1
                tags = [c.put_frame(1000 * i + s, gen, page(cid, s, gen)) for s in range(npages)]
                assert all(f.status == proto.OK for f in c.wait(tags).values())
                if i == 0:  # the invalidator: full-scan path (count > capacity / 4 + 64)
                    assert c.invalidate(0, proto.GEN_ANY, count=1 << 20) == proto.OK
                    assert c.get(5, gen) == (proto.ENOENT, None)
                else:
                    tags = {c.get_frame(1000 * i + s, gen): s for s in range(npages)}
                    for tag, frame in c.wait(tags).items():
                        assert frame.payload == page(cid, tags[tag], gen), (cid, tags[tag])

    errors = run_threads(work, 3)
    assert not errors, errors
    with srv.client() as c:
        assert c.status().used_pages == 2 * npages
    for i in (1, 2):
        cid = 0xB0000 + i
        with srv.client(cid) as c:
            for s in range(npages):
                assert c.get(1000 * i + s, rounds) == (proto.OK, page(cid, s, rounds))


def test_second_sigterm_during_drain_stops_every_loop_at_once(start_server):
    srv = start_server("--loops", "2", "--cache-size", "4M")
    clients = [srv.client(0xC0000 + i) for i in range(4)]
    try:
        for i, c in enumerate(clients):
            assert c.put(0, 1, page(0xC0000 + i, 0)) == proto.OK
        # connections that keep sending would hold the drain for its full 5 s
        stop = threading.Event()

        def chatter(c):
            while not stop.is_set():
                try:
                    c.send_raw(proto.encode_frame(proto.STATUS, tag=1))
                    c.recv()
                except (OSError, proto.NswapError):
                    return

        threads = [threading.Thread(target=chatter, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        srv.signal(signal.SIGTERM)
        assert srv.wait_log(r"SIGTERM: draining 4 connections")
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.proc.wait(10)
        elapsed = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        for c in clients:
            c.close()
    assert rc == 0, srv.log_text()
    assert elapsed < 2.0, elapsed
    assert srv.wait_log(r"SIGTERM during drain: closing \d+ connections now")


def test_auto_counts_the_cpus_nswapd_may_run_on(nswapd_bin):
    """auto follows the process's CPU affinity (CPUAffinity=, a cpuset, a container), not
    every online CPU: pinned to one CPU, nswapd runs one loop."""
    srv = nswapd.Nswapd(
        nswapd_bin, "--cache-size", "4M", command=lambda argv: ["taskset", "-c", "0", *argv]
    )
    try:
        assert srv.wait_log(r"loops 1,"), srv.log_text()
    finally:
        assert srv.stop() == 0, srv.log_text()


def test_a_client_with_one_request_is_not_served_behind_anothers_backlog(start_server):
    """Fair turns (conn.c FRAMES_PER_TURN): with one event loop, connection A has 2,000
    pipelined GETPAGEs waiting and connection B one STATUS, both sent while nswapd is stopped
    (SIGSTOP), A's first.  Once nswapd runs again, B's STATUS must come back before A's
    backlog is half done (its `gets` counter tells how far A was), and then every one of A's
    2,000 replies still comes, in order.  Before the turns, A's whole backlog ran first."""
    srv = start_server("--loops", "1", "--cache-size", "1M")
    backlog = 2000
    with srv.client(0x7A000, "backlog") as a, srv.client(0x7A001, "one-request") as b:
        assert a.put(1, 1, page(0x7A000, 1)) == proto.OK
        base = srv.status()["gets"]
        frames = b"".join(
            proto.encode_frame(
                proto.GETPAGE, tag=1000 + i, client_id=0x7A000, slot=1000 + i, generation=1
            )
            for i in range(backlog)
        )  # misses: 32-byte replies, so A's replies never fill its socket and stop it
        srv.signal(signal.SIGSTOP)
        try:
            a.send_raw(frames)
            time.sleep(0.2)  # A's bytes are queued before B's
            tag = b.send(proto.STATUS)
        finally:
            srv.signal(signal.SIGCONT)
        reply = b.wait([tag])[tag]
        assert reply.header.status == proto.OK
        served_before_b = proto.decode_status(reply.payload).gets - base
        assert served_before_b < backlog // 2, served_before_b
        for i in range(backlog):
            frame = a.recv()
            assert (frame.header.tag, frame.header.status) == (1000 + i, proto.ENOENT), i
    status = srv.status()
    assert status["gets"] - base == backlog and status["get_misses"] >= backlog, status
