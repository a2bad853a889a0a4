"""The fault proxy (harness/faultproxy.py) between a protocol client and a real nswapd on
loopback: it passes requests and replies through unchanged, except that it drops every Nth
PUTPAGE/GETPAGE reply, at most --max-drops of them (or, with --delay-ms, holds every Nth
PUTPAGE reply; with --corrupt, damages the page of every Nth GETPAGE reply that has one), and
says so in its summary."""

import socket
import time

import pytest
from ansible_collections.nswap.cluster.plugins.module_utils import nswap_protocol as proto

from harness import faultproxy, nswapd

CLIENT_ID = 0x6E737761705F7078


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page(i):
    return bytes([i % 251]) * proto.PAGE_SIZE


def test_every_third_reply_is_dropped_up_to_the_limit_and_the_rest_pass(nswapd_bin):
    listen = "127.0.0.1:%d" % free_port()
    with nswapd.running(nswapd_bin, "--cache-size", "1M") as server:
        target = "127.0.0.1:%d" % server.port
        with faultproxy.running(listen, target, drop_every=3, max_drops=2) as summary:
            with proto.Client("127.0.0.1", int(listen.rpartition(":")[2]), timeout=5) as client:
                client.hello(CLIENT_ID)  # HELLO replies are never dropped
                tags = [client.put_frame(slot, 1, page(slot)) for slot in range(8)]
                answered = [client.recv() for _ in range(6)]
                client.settimeout(1.0)
                with pytest.raises(socket.timeout):
                    client.recv()
                # replies 3 and 6 dropped; 9 would be, but two is the limit
                assert [f.header.tag for f in answered] == [tags[i] for i in (0, 1, 3, 4, 6, 7)]
                assert {f.header.status for f in answered} == {proto.OK}
                # the server stored all eight: the proxy dropped replies, not requests
                client.settimeout(5)
                for slot in range(8):
                    assert client.get(slot, 1) == (proto.OK, page(slot))
        assert server.status()["used_pages"] == 8
    assert summary == {
        "connections": 1,
        "replies": 16,
        "dropped": 2,
        "delayed": 0,
        "corrupted": 0,
    }


def test_delay_holds_every_second_put_reply_and_drops_nothing(nswapd_bin):
    """--delay-ms: the picked PUTPAGE replies come late (and the connection's later replies
    behind them), none is lost, GETPAGE replies are never picked."""
    listen = "127.0.0.1:%d" % free_port()
    with nswapd.running(nswapd_bin, "--cache-size", "1M") as server:
        target = "127.0.0.1:%d" % server.port
        with faultproxy.running(listen, target, drop_every=2, max_drops=2, delay_ms=400) as summary:
            with proto.Client("127.0.0.1", int(listen.rpartition(":")[2]), timeout=5) as client:
                client.hello(CLIENT_ID)
                started = time.monotonic()
                tags = [client.put_frame(slot, 1, page(slot)) for slot in range(4)]
                answered = [client.recv() for _ in range(4)]
                elapsed = time.monotonic() - started
                assert [f.header.tag for f in answered] == tags  # late, in order, all there
                assert {f.header.status for f in answered} == {proto.OK}
                assert elapsed >= 0.8, elapsed  # replies 2 and 4 were each held 0.4 s
                for slot in range(4):
                    assert client.get(slot, 1) == (proto.OK, page(slot))
    assert summary == {
        "connections": 1,
        "replies": 4,
        "dropped": 0,
        "delayed": 2,
        "corrupted": 0,
    }


def test_corrupt_damages_every_second_page_and_keeps_its_crc(nswapd_bin):
    """--corrupt: the picked GETPAGE replies arrive with one byte of the page flipped and the
    server's CRC, so a client that checks the CRC sees the damage; PUT replies and GET
    replies without a page (ENOENT) are never picked."""
    listen = "127.0.0.1:%d" % free_port()
    with nswapd.running(nswapd_bin, "--cache-size", "1M") as server:
        target = "127.0.0.1:%d" % server.port
        with faultproxy.running(listen, target, drop_every=2, max_drops=2, corrupt=True) as summary:
            with proto.Client("127.0.0.1", int(listen.rpartition(":")[2]), timeout=5) as client:
                client.hello(CLIENT_ID)
                for slot in range(3):
                    assert client.put(slot, 1, page(slot)) == proto.OK
                assert client.get(7, 1)[0] == proto.ENOENT  # no page: not a candidate
                frames, slots = [], (0, 1, 2, 0, 1)
                for slot in slots:
                    client.get_frame(slot, 1)
                    frames.append(client.recv(verify=False))
    damaged = [i for i, f in enumerate(frames) if f.payload != page(slots[i])]
    assert damaged == [1, 3], damaged  # the 2nd and 4th page replies
    for i in damaged:
        wanted = page(slots[i])
        diff = [k for k in range(len(wanted)) if frames[i].payload[k] != wanted[k]]
        assert len(frames[i].payload) == proto.PAGE_SIZE and len(diff) == 1, diff
        assert proto.crc32c(frames[i].payload) != frames[i].header.crc
    assert summary == {
        "connections": 1,
        "replies": 5,
        "dropped": 0,
        "delayed": 0,
        "corrupted": 2,
    }


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit) as info:
        faultproxy.main(["--listen", "127.0.0.1:1", "--server", "127.0.0.1:2", "--drop-every", "0"])
    assert info.value.code == 2
    assert "--drop-every must be at least 1" in capsys.readouterr().err


def test_stops_with_its_summary_while_clients_are_still_connected(nswapd_bin):
    """SIGTERM while connections are open (their threads blocked in recv) still ends the
    proxy with its summary, each of several times."""
    with nswapd.running(nswapd_bin, "--cache-size", "1M") as server:
        target = "127.0.0.1:%d" % server.port
        for _attempt in range(5):
            listen = "127.0.0.1:%d" % free_port()
            with faultproxy.running(listen, target, drop_every=1000, max_drops=0) as summary:
                port = int(listen.rpartition(":")[2])
                clients = [proto.Client("127.0.0.1", port, timeout=5) for _ in range(3)]
                for client in clients:
                    client.hello(CLIENT_ID)
            for client in clients:
                client.close()
            assert summary["connections"] == 3, summary
