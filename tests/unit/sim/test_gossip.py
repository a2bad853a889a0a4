"""nswapd's gossip code and the placement rule, through the simulator's two programs.

gossip-test checks each rule against hand-computed outcomes (src/sim/gossip-test.c); the
nswap-sim runs check small clusters end to end: every datagram goes through the real
encoder and decoder (nswap-sim exits 3 on any datagram its own nodes reject).
"""

import subprocess

import pytest

from harness import sim

C_TESTS = [
    "handshake",
    "rejects",
    "precedence",
    "refute",
    "suspect_dead_expire",
    "rumour_sends",
    "server_set",
    "placement",
    "hostile",
    "steady_room",
    "fresh_first",
    "config_check",
]
DATAGRAM_MAX = 56 + 24 * 48


@pytest.fixture(scope="module")
def programs():
    return sim.build()


@pytest.mark.parametrize("name", C_TESTS)
def test_gossip_rule(programs, name):
    proc = subprocess.run(
        [programs[1], name], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok " + name, proc.stdout + proc.stderr


def test_every_c_test_is_run_here(programs):
    proc = subprocess.run([programs[1]], capture_output=True, text=True, timeout=60, check=True)
    assert [line.split()[1] for line in proc.stdout.splitlines()] == C_TESTS


def test_two_nodes_know_each_other_after_one_round_and_send_what_was_computed(programs):
    # Node 1 is seeded with node 0: its push and node 0's reply in round 1.  From round 2
    # each round each node pushes once and answers once, datagrams of 2 entries
    # (56 + 2 x 48 bytes): 2 x 152 = 304 bytes per node per round (second).
    out = sim.run("--nodes", 2, "--warmup", 1, "--rounds", 19, sim=programs[0])
    assert out["rounds"][0]["known"] == 1.0
    assert out["summary"]["gossip_bytes_per_node_s"] == 304.0


def test_a_small_cluster_sees_a_join_a_leave_and_a_crash_within_five_rounds(programs):
    out = sim.run(
        "--nodes", 60, "--warmup", 30, "--rounds", 50,
        "--join", 10, "--leave", 20, "--crash", 30, "--seed", 3,
        sim=programs[0],
    )  # fmt: skip
    s = out["summary"]
    assert out["rounds"][29]["known"] == 1.0
    assert 0 <= s["join_seen99_rounds"] <= 5
    assert 0 <= s["leave_seen99_rounds"] <= 5
    assert 0 <= s["crash_seen99_rounds"] <= 5
    # someone's suspicion timer declared the crashed node dead, everybody sees it
    # gone at the end, and nobody alive had to refute (no false suspicion without loss)
    assert s["declared_dead"] >= 1 and s["refuted"] == 0
    assert out["rounds"][-1]["crash_seen"] == 1.0
    # bounded datagrams: per node and second at most a push per fanout target, the
    # answers to as many pushes on average, and the seed push
    assert 0 < s["gossip_bytes_per_node_s"] <= (2 * 3 + 1) * DATAGRAM_MAX


def test_no_page_goes_to_disk_while_the_cluster_has_room(programs):
    roomy = sim.run("--nodes", 80, "--warmup", 20, "--rounds", 70, sim=programs[0])
    assert roomy["summary"]["placed"] > 1000
    assert roomy["summary"]["disk"] == 0 and roomy["summary"]["disk_with_room"] == 0


def test_a_full_cluster_sends_to_disk_about_what_the_oracle_does(programs):
    # Half the nodes busy: the cluster itself runs short (the oracle, which sees every
    # node's room, goes to disk too).  Gossip's views are up to a few rounds old, so some
    # of its disk pages had room somewhere (disk_with_room); the total stays close.
    args = ("--nodes", 40, "--warmup", 20, "--rounds", 70, "--busy-rate", 0.5)
    ours = sim.run(*args, sim=programs[0])["summary"]
    oracle = sim.run(*args, "--placement", "oracle", sim=programs[0])["summary"]
    assert oracle["disk"] > 0 and oracle["disk_with_room"] == 0
    assert oracle["disk"] <= ours["disk"] <= 1.1 * oracle["disk"]
    assert ours["disk_with_room"] < ours["disk"]


def test_one_in_fifty_datagrams_lost_still_sees_changes_and_keeps_the_membership(programs):
    out = sim.run(
        "--nodes", 200, "--warmup", 30, "--rounds", 70, "--loss", 0.02,
        "--join", 10, "--leave", 20, "--crash", 30, "--seed", 1,
        sim=programs[0],
    )  # fmt: skip
    s = out["summary"]
    assert 0 <= s["join_seen99_rounds"] <= 5
    assert 0 <= s["leave_seen99_rounds"] <= 5
    # a crash needs PROBE_TRIES unanswered pushes before suspicion, then the suspicion
    # timer: up to 8 rounds with loss
    assert 0 <= s["crash_seen99_rounds"] <= 8
    # lost answers make live nodes suspected; they refute and stay members
    assert s["refuted"] >= 1
    assert min(r["known"] for r in out["rounds"][30:]) >= 0.98
    assert out["rounds"][-1]["known"] >= 0.99


def test_gossip_placement_is_close_to_the_oracle_on_a_small_cluster(programs):
    args = ("--nodes", 200, "--warmup", 30, "--rounds", 70, "--seed", 5)
    ours = sim.run(*args, sim=programs[0])["summary"]
    oracle = sim.run(*args, "--placement", "oracle", sim=programs[0])["summary"]
    assert oracle["enospc"] == 0 and oracle["disk"] == 0
    assert ours["imbalance_placement_mean"] <= 1.25 * oracle["imbalance_placement_mean"]


def test_placing_by_the_replies_figures_brings_100_nodes_within_10_percent_of_the_oracle(
    programs,
):
    # gossip's free counts are about 2 rounds old at 100 nodes; a PUTPAGE reply's room is
    # current (docs/placement.md): over 10 seeds the ratio to the oracle was 1.131 without
    # the replies' figures and 1.083 with them, each known 32 pages after its request
    # (the simulator's default --reply-lag; the target: 1.10)
    ratios = {0: [], 2: []}
    for seed in range(1, 11):
        args = ("--nodes", 100, "--warmup", 400, "--settle", 0.95, "--rounds", 60)
        args += ("--seed", seed, "--join", 10, "--leave", 20, "--crash", 30)
        oracle = sim.run(*args, "--placement", "oracle", sim=programs[0])["summary"]
        for rounds, found in ratios.items():
            ours = sim.run(*args, "--reply-hints", rounds, sim=programs[0])
            assert (ours["reply_hints"], ours["reply_lag"]) == (rounds, 32)
            found.append(
                ours["summary"]["imbalance_placement_mean"] / oracle["imbalance_placement_mean"]
            )
    without, with_replies = (sum(r) / len(r) for r in (ratios[0], ratios[2]))
    assert with_replies <= 1.10 and with_replies < without - 0.03, (without, with_replies)


@pytest.mark.parametrize(
    "args",
    [
        ("--nodes", 1),
        ("--reply-hints", -1),
        ("--reply-lag", 128),
        ("--fanout", 0),
        ("--entries", 25),
        ("--placement", "central"),
        ("--loss", 1),
    ],
)
def test_bad_arguments_exit_2_and_say_why(programs, args):
    proc = subprocess.run(
        [programs[0], *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2 and "usage: nswap-sim" in proc.stderr
