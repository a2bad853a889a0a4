#!/usr/bin/env python3
"""The cluster at 10 to 10,000 nodes, in virtual time: nswapd's own gossip code and the
placement rule (src/nswapd/gossip.c, src/include/nswap_place.h) driven by nswap-sim.

For each size, two runs from the same seed and trace: placement by gossip (each node's
server set from its own table, the two-choice rule per page) and by a central oracle that
knows every server's true fill (the baseline).  Each run: a cold start (every node knows 3
seeds) until the mean node knows --settle of the others (at most --warmup rounds), then
--rounds rounds of load (busy episodes: a node's demand rises to 110-160 % of its RAM and
falls back; lenders shrink their caches as their own demand rises and punt pages), with a
join, a leave (drain) and a crash.

Output (results/cluster-sim-DATE/ unless --output): runs/*.json (nswap-sim's output),
summary.json, summary.md (the table below, with the targets) and plots:
  traffic.png      gossip bytes sent per node and second vs cluster size
  imbalance.png    max/mean server fill, gossip vs oracle, vs cluster size
  membership.png   rounds until 99 % of nodes see a join, a leave, a crash
  spread.png       fraction of nodes that see the join, by rounds since it
  pages.png        migrations per placed page, pages to disk while the cluster had room
A benchmark, not a test: a missed target is printed as MISSED and the exit status is 0
when every run produced numbers.

    benchmarks/cluster_sim.py                       # 10, 100, 1000, 10000 nodes
    benchmarks/cluster_sim.py --sizes 10,100,1000   # minutes fewer
    benchmarks/cluster_sim.py --sizes 1000 --loss 0.01 --busy-rate 0.05   # lossy, loaded
"""

import argparse
import datetime
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from harness import sim  # noqa: E402

EVENTS = {"join": 10, "leave": 20, "crash": 30}  # rounds after the warm-up
TARGET_TRAFFIC_SPREAD = 2.0  # max/min gossip bytes per node and second over the sizes
TARGET_IMBALANCE_RATIO = 1.10  # gossip's placement imbalance / the oracle's
TARGET_SEEN_ROUNDS = 5  # a join or leave seen by 99 % of nodes within this many rounds


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10,100,1000,10000", help="cluster sizes, comma-separated")
    p.add_argument("--warmup", type=int, default=400, help="most cold-start rounds")
    p.add_argument(
        "--settle", type=float, default=0.95, help="end the warm-up at this known fraction"
    )
    p.add_argument("--rounds", type=int, default=60, help="rounds of load after the warm-up")
    p.add_argument("--set", type=int, default=32, help="servers per client (nswap.ko's list)")
    p.add_argument("--seed", type=int, default=1, help="first seed")
    p.add_argument("--loss", type=float, default=0.0, help="fraction of datagrams lost")
    p.add_argument("--busy-rate", type=float, default=0.01, help="busy episodes per node and round")
    p.add_argument(
        "--overflow",
        type=int,
        default=0,
        help="nswapd's overflow in pages (a full server takes a page and punts it on); 0: off",
    )
    p.add_argument(
        "--reply-hints",
        type=int,
        default=2,
        help="rounds a client places by a PUTPAGE reply's room (nswap.ko's reply_hint_ms);"
        " 0: by gossip's figures only",
    )
    p.add_argument(
        "--reply-lag",
        type=int,
        default=32,
        help="pages a client places before a PUTPAGE reply's room reaches it (requests in"
        " flight; 0-127)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=5,
        help="seeds per size up to --seeds-upto nodes (larger sizes: 1), averaged",
    )
    p.add_argument("--seeds-upto", type=int, default=1000)
    p.add_argument("--output", help="directory (default results/cluster-sim-DATE)")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        p.error("--sizes takes numbers, e.g. 10,100,1000")
    if any(n < 4 or n > 100000 for n in args.sizes):
        p.error("--sizes: each size must be 4 to 100000 nodes")
    if args.overflow < 0:
        p.error("--overflow takes pages, 0 or more")
    if args.reply_hints < 0:
        p.error("--reply-hints takes rounds, 0 or more")
    if not 0 <= args.reply_lag < 128:
        p.error("--reply-lag takes pages, 0 to 127")
    if not 0 <= args.loss < 1 or not 0 <= args.busy_rate <= 1:
        p.error("--loss takes 0 to <1 and --busy-rate 0 to 1, e.g. --loss 0.01")
    return args


def run_size(n, args, placement, runs_dir, seed):
    cmd = [
        "--nodes", n, "--warmup", args.warmup, "--settle", args.settle,
        "--rounds", args.rounds, "--set", args.set, "--seed", seed,
        "--placement", placement, "--loss", args.loss, "--busy-rate", args.busy_rate,
        "--join", EVENTS["join"], "--leave", EVENTS["leave"], "--crash", EVENTS["crash"],
        "--overflow", args.overflow, "--reply-hints", args.reply_hints,
        "--reply-lag", args.reply_lag,
    ]  # fmt: skip
    start = time.monotonic()
    out = sim.run(*cmd)
    out["wall_s"] = round(time.monotonic() - start, 1)
    out["command"] = "src/sim/nswap-sim " + " ".join(map(str, cmd))
    with open(os.path.join(runs_dir, "%s-%d-seed%d.json" % (placement, n, seed)), "w") as f:
        json.dump(out, f)
    return out


SUMMED = (
    "placed",
    "enospc",
    "disk",
    "disk_with_room",
    "migrations",
    "punted_home",
    "lost_in_crash",
    "returned_home",
    "suspected",
    "declared_dead",
    "refuted",
    "overflows",
)


def combine(outs):
    """One result from the runs of several seeds: counts summed, rounds-until-seen the worst
    (-1, never, if any run never got there), everything else the mean; the first run's
    per-round series; per_seed keeps each summary."""
    sums = [o["summary"] for o in outs]
    summary = {}
    for key in sums[0]:
        values = [s[key] for s in sums]
        if key in SUMMED:
            summary[key] = sum(values)
        elif key.endswith("_seen99_rounds"):
            summary[key] = -1 if min(values) < 0 else max(values)
        else:
            summary[key] = sum(values) / len(values)
    return {
        "summary": summary,
        "rounds": outs[0]["rounds"],
        "wall_s": sum(o["wall_s"] for o in outs),
        "per_seed": sums,
    }


def verdict(ok):
    return "MET" if ok else "MISSED"


def render(results, args, outdir):
    sizes = args.sizes
    g = [results[n]["gossip"]["summary"] for n in sizes]
    o = [results[n]["oracle"]["summary"] for n in sizes]

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, name), dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sizes, [s["gossip_bytes_per_node_s"] / 1000 for s in g], "o-")
    ax.set(xscale="log", xlabel="nodes", ylabel="kB sent per node per second",
           title="Gossip traffic per node", ylim=(0, None))  # fmt: skip
    save(fig, "traffic.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sizes, [s["imbalance_placement_mean"] for s in g], "o-", label="gossip")
    ax.plot(sizes, [s["imbalance_placement_mean"] for s in o], "s--", label="oracle")
    ax.plot(sizes, [s["imbalance_mean"] for s in g], "o:", label="gossip, all servers")
    ax.plot(sizes, [s["imbalance_mean"] for s in o], "s:", label="oracle, all servers")
    ax.set(xscale="log", xlabel="nodes", ylabel="max fill / mean fill",
           title="Placement imbalance (mean over the loaded rounds)", ylim=(0, None))  # fmt: skip
    ax.legend()
    save(fig, "imbalance.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("join", "join"), ("leave", "leave (drained)"), ("crash", "crash")):
        ys = [s[key + "_seen99_rounds"] for s in g]
        ax.plot(sizes, [y if y >= 0 else float("nan") for y in ys], "o-", label=label)
    ax.axhline(TARGET_SEEN_ROUNDS, color="grey", ls="--", label="target")
    ax.set(xscale="log", xlabel="nodes", ylabel="rounds (gossip intervals)",
           title="Until 99 % of nodes see it", ylim=(0, None))  # fmt: skip
    ax.legend()
    save(fig, "membership.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for n in sizes:
        rounds = results[n]["gossip"]["rounds"]
        seen = [r["join_seen"] for r in rounds if r["join_seen"] >= 0][:15]
        ax.plot(range(len(seen)), seen, "o-", label="%d nodes" % n)
    ax.set(xlabel="rounds since the join", ylabel="fraction of nodes that see it",
           title="A join spreading")  # fmt: skip
    ax.legend()
    save(fig, "spread.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sizes, [s["migrations_per_page"] for s in g], "o-", label="migrations per placed page")
    ax.plot(sizes, [s["disk_with_room"] for s in g], "s-", label="pages to disk with room left")
    ax.set(xscale="log", xlabel="nodes", title="Pages moved and pages to disk")
    ax.legend()
    save(fig, "pages.png")


def table(results, args):
    rows = [
        "| nodes (seeds) | warm-up rounds (known) | gossip B/node/s | imbalance gossip / oracle "
        "(ratio, per seed) | all servers gossip / oracle | join / leave / crash seen by 99 % "
        "(rounds) | suspected / refuted | placed pages | migrations/page | disk (with room) | "
        "lost in crash | sim wall s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in args.sizes:
        g = results[n]["gossip"]["summary"]
        o = results[n]["oracle"]["summary"]
        ratio = g["imbalance_placement_mean"] / o["imbalance_placement_mean"]
        per_seed = [
            a["imbalance_placement_mean"] / b["imbalance_placement_mean"]
            for a, b in zip(
                results[n]["gossip"]["per_seed"], results[n]["oracle"]["per_seed"], strict=True
            )
        ]
        spread = "" if len(per_seed) == 1 else ", %.2f-%.2f" % (min(per_seed), max(per_seed))
        rows.append(
            "| %d (%d) | %.0f (%.3f) | %.0f | %.2f / %.2f (%.3f%s) | %.2f / %.2f | "
            "%s / %s / %s | %.0f / %.0f | %d | %.3f | %d (%d) | %d | %.0f + %.0f |"
            % (
                n, len(per_seed), g["warmup_rounds"], g["known_at_warmup"],
                g["gossip_bytes_per_node_s"],
                g["imbalance_placement_mean"], o["imbalance_placement_mean"], ratio, spread,
                g["imbalance_mean"], o["imbalance_mean"],
                g["join_seen99_rounds"], g["leave_seen99_rounds"], g["crash_seen99_rounds"],
                g["suspected"], g["refuted"],
                g["placed"], g["migrations_per_page"], g["disk"], g["disk_with_room"],
                g["lost_in_crash"], results[n]["gossip"]["wall_s"], results[n]["oracle"]["wall_s"],
            )
        )  # fmt: skip
    return rows


def targets(results, args):
    g = {n: results[n]["gossip"]["summary"] for n in args.sizes}
    o = {n: results[n]["oracle"]["summary"] for n in args.sizes}
    traffic = [g[n]["gossip_bytes_per_node_s"] for n in args.sizes]
    spread = max(traffic) / min(traffic)
    largest = max(args.sizes)
    ratios = {n: g[n]["imbalance_placement_mean"] / o[n]["imbalance_placement_mean"] for n in g}
    seen = [g[largest][k + "_seen99_rounds"] for k in ("join", "leave")]
    disk = sum(g[n]["disk_with_room"] for n in g)
    above = [g[n]["gossip_bytes_per_node_s"] for n in args.sizes if n >= 100]
    context = (
        " (a node's datagrams hold up to 24 entries while it learns the cluster, 18 once its "
        "table is stable, a 10-node cluster's 10; from 100 nodes on max/min %.3f)"
        % (max(above) / min(above))
        if len(above) > 1
        else ""
    )
    return [
        "- gossip traffic per node flat within %.0fx from %d to %d nodes: max/min %.2f: %s"
        % (TARGET_TRAFFIC_SPREAD, min(args.sizes), largest, spread,
           verdict(spread <= TARGET_TRAFFIC_SPREAD)) + context,
        "- placement imbalance within %.0f%% of the oracle's: ratios %s: %s"
        % (
            (TARGET_IMBALANCE_RATIO - 1) * 100,
            ", ".join("%d: %.3f" % (n, r) for n, r in sorted(ratios.items())),
            verdict(all(r <= TARGET_IMBALANCE_RATIO for r in ratios.values())),
        ),
        "- a join and a leave seen by 99%% of %d nodes within %d rounds: %s rounds: %s"
        % (largest, TARGET_SEEN_ROUNDS, " and ".join(map(str, seen)),
           verdict(all(0 <= s <= TARGET_SEEN_ROUNDS for s in seen))),
        "- no page to disk while the cluster had room: %d such pages: %s"
        % (disk, verdict(disk == 0)),
    ]  # fmt: skip


def main(argv=None):
    args = parse_args(argv)
    outdir = args.output or os.path.join(
        REPO, "results", "cluster-sim-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    )
    runs_dir = os.path.join(outdir, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    sim.build()
    results = {}
    for n in args.sizes:
        results[n] = {}
        seeds = range(args.seed, args.seed + (args.seeds if n <= args.seeds_upto else 1))
        for placement in ("gossip", "oracle"):
            outs = []
            for seed in seeds:
                outs.append(run_size(n, args, placement, runs_dir, seed))
                print(
                    "%6d nodes, %s, seed %d: warm-up %d rounds, %.1f s"
                    % (
                        n,
                        placement,
                        seed,
                        outs[-1]["summary"]["warmup_rounds"],
                        outs[-1]["wall_s"],
                    ),
                    flush=True,
                )
            results[n][placement] = combine(outs)
    lines = ["# nswap cluster simulation", ""]
    lines += [
        "Command: `benchmarks/cluster_sim.py %s`"
        % " ".join(sys.argv[1:] if argv is None else argv),
        "",
    ]
    lines += table(results, args) + ["", "Targets:", ""] + targets(results, args)
    lines += ["", "Each run's nswap-sim command is in runs/*.json (`command`)."]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(
            {str(n): {p: r["summary"] for p, r in v.items()} for n, v in results.items()},
            f,
            indent=1,
        )
    render(results, args, outdir)
    print(text)
    print("plots and runs in", outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
