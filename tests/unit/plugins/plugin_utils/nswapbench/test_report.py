"""plugins/plugin_utils/nswapbench: Table 1, crossover, Table 2, CSVs, charts and the CLI on
fixed data."""

import csv
import importlib.machinery
import importlib.util
import io
import math
import os
import subprocess
import sys

import pytest
from ansible_collections.nswap.cluster.plugins.plugin_utils.nswapbench import (
    charts,
    libraries,
    report,
    schema,
    tables,
)

from tests import REPO

# scripts/nswapbench, the checkout's shell command (a script without .py: loaded by path)
_LOADER = importlib.machinery.SourceFileLoader(
    "nswapbench_cli", os.path.join(REPO, "scripts", "nswapbench")
)
cli = importlib.util.module_from_spec(importlib.util.spec_from_loader(_LOADER.name, _LOADER))
_LOADER.exec_module(cli)
from tests.unit.plugins.plugin_utils.nswapbench.test_schema import (
    cell,
    disk,
    lines,
    link,
    run,
    write_jsonl,
)


def fixture_records():
    """One case per row; the numbers are checked by hand in the comments."""
    records = []
    # W1 x1: disk 12 ± 2, nswap-1 22 ± 2: 1.8x slower, Welch t = 6.12, df = 4, p = 0.0036
    records += cell("W1", 1, "disk", [10.0, 12.0, 14.0])
    records += cell("W1", 1, "nswap-1", [20.0, 22.0, 24.0])
    # W1 x4: no nswap-1 run finished
    records += cell("W1", 4, "disk", [10.0, 11.0])
    records += [
        run("W1", 4, "nswap-1", 0, None, status="failed", mismatches=None),
        run("W1", 4, "nswap-1", 1, 30.0, status="failed"),
        run("W1", 4, "nswap-1", 2, None, status="timeout", mismatches=None),
    ]
    # W2 x4: no variance on either side: 2.0x faster, no t-test
    records += cell("W2", 4, "disk", [30.0, 30.0, 30.0])
    records += cell("W2", 4, "nswap-1", [15.0, 15.0, 15.0])
    # W3 x1: one timed run each; nswap-1's second run read back 3 wrong pages
    records += cell("W3", 1, "disk", [40.0])
    records += [
        run("W3", 1, "nswap-1", 0, 20.0),
        run("W3", 1, "nswap-1", 1, 19.0, mismatches=3, status="failed"),
    ]
    # W4 x4: no disk cell
    records += cell("W4", 4, "nswap-1", [50.0, 52.0])
    # Table 2: T = 10 + 9000 / rate: 910 s at 10 Mbit/s, 100 s at 100 Mbit/s (nominal rates)
    records += cell("W1", 1, "nswap-1", [900.0, 920.0], link_profile="10mbit", link_rate_mbit=10)
    records += cell("W1", 1, "nswap-1", [100.0], link_profile="100mbit", link_rate_mbit=100)
    # the ordinary link measured 125 MB/s = 1000 Mbit/s: projected 19 s, measured 22 s
    records += [link(), link(stream_mbs=115.0, rtt_4k_us=500.0), disk()]
    return records


def results_of(records):
    return schema.parse_lines(lines(records), "results.jsonl")


@pytest.fixture(scope="module")
def markdown():
    results = results_of(fixture_records())
    return report.render(results, report.chart_names(results))


def row_of(text, start):
    """The first table row that starts so (Table 1 comes before its "Why" table)."""
    return next(line for line in text.splitlines() if line.startswith(start))


# --- Table 1 ------------------------------------------------------------------------------


def test_comparison_numbers():
    (table,) = tables.table1(results_of(fixture_records()).runs)
    assert (table.disk_profile, table.link_profile, table.backends) == (
        "ssd",
        "unlimited",
        ("disk", "nswap-1"),
    )
    first = table.rows[0].comparisons["nswap-1"]
    assert first.ratio == pytest.approx(22 / 12)
    assert first.welch.p == pytest.approx(0.0036022326, rel=1e-6)
    assert [(r.workload, r.procs) for r in table.rows] == [
        ("W1", 1),
        ("W1", 4),
        ("W2", 4),
        ("W3", 1),
        ("W4", 4),
    ]


@pytest.mark.parametrize(
    "start, expected",
    [
        ("| W1, 1 ", "| W1, 1 | 12.0 ± 2.0 | 22.0 ± 2.0 (1.8x slower *) |"),
        (
            "| W1, 4 ",
            "| W1, 4 | 10.5 ± 0.7 | no time (no run finished) 0/3 ok (2 failed, 1 timeout) |",
        ),
        (
            "| W2, 4 ",
            "| W2, 4 | 30.0 ± 0.0 | 15.0 ± 0.0 (2.0x faster; t-test n/a: no variance on either "
            "side) |",
        ),
        (
            "| W3, 1 ",
            "| W3, 1 | 40.0 (1 run) | 20.0 (1 run) (2.0x faster) **1/2 ok (1 corrupt)** |",
        ),
        ("| W4, 4 ", "| W4, 4 | no runs | 51.0 ± 1.4 (no disk runs in this row) |"),
    ],
)
def test_table1_cells(markdown, start, expected):
    assert row_of(markdown, start) == expected


def test_profiles_beside_the_table_and_crossover(markdown):
    assert "## Table 1: disk profile `ssd`, link profile `unlimited`" in markdown
    assert (
        "- **nswap-1** is faster than disk in 2 of 3 rows: W2 x4, W3 x1; slower in: W1 x1*."
        in markdown
    )


def test_corruption_is_shown_first(markdown):
    head = markdown.split("## ", 1)[0]
    assert "DATA CORRUPTION: 1 of 25 runs read back wrong pages" in head
    assert (
        "line 20: W3 x1 on nswap-1 (disk ssd, link unlimited), repetition 1: 3 mismatched" in head
    )


def test_clean_runs_say_so():
    results = results_of(cell("W1", 1, "disk", [1.0, 2.0]))
    text = report.render(results, report.chart_names(results))
    assert "No run read back a wrong page (mismatches = 0 in all 2 runs that checked)." in text
    assert "CORRUPTION" not in text


def test_raw_rates_are_printed(markdown):
    # two link records: 125 and 115 MB/s -> 120 MB/s = 960 Mbit/s, RTT (400 + 500) / 2
    assert "| unlimited | none | 120 | 960 | 450 | 2 |" in markdown
    assert "| ssd | 250 | 2000 | 20000 | 1 |" in markdown


def test_all_runs_failed():
    records = [
        run("W2", 1, backend, i, None, status="failed", mismatches=None)
        for backend in ("disk", "zram")
        for i in range(2)
    ]
    results = results_of(records)
    text = report.render(results, report.chart_names(results))
    assert row_of(text, "| W2, 1 ") == (
        "| W2, 1 | no time 0/2 ok (2 failed) | no time (no disk run finished) 0/2 ok (2 failed) |"
    )
    assert "- **zram** is faster than disk in 0 of 0 rows: none; slower in: none." in text
    assert "(mismatches = 0 in all 0 runs that checked; 4 failed before checking)." in text


def test_crossover_by_disk_profile():
    records = cell("W1", 1, "disk", [10.0, 11.0], disk_profile="hdd")
    records += cell("W1", 1, "nswap-3", [5.0, 6.0], disk_profile="hdd")
    records += cell("W1", 1, "disk", [2.0, 2.5], disk_profile="nvme")
    records += cell("W1", 1, "nswap-3", [5.0, 6.0], disk_profile="nvme")
    results = results_of(records)
    text = report.render(results, report.chart_names(results))
    assert "| disk profile | link profile | nswap-3 faster than disk in |" in text
    assert "| hdd | unlimited | 1/1: W1 x1* |" in text
    assert "| nvme | unlimited | 0/1: none |" in text


# --- Table 2 ------------------------------------------------------------------------------


def test_table2_fit_projection_and_validation(markdown):
    row = row_of(markdown, "| ssd | W1, 1, nswap-1 |")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "10mbit 10 Mbit/s (nominal): 910.0; 100mbit 100 Mbit/s (nominal): 100.0"
    assert cells[3:5] == ["0.989", "10.0"]  # f = 900 / 910, other = 10 s
    # 1 Gbit: 10 + 9 = 19 s, 910/19 = 47.9x; against the 12 s disk cell: 1.6x slower
    assert cells[5] == "19.0 (47.9x), 1.6x slower than disk"
    assert cells[6] == "10.9 (83.5x), 1.1x faster than disk"
    assert cells[7] == "10.4 (87.8x), 1.2x faster than disk"
    # the ordinary link measured 960 Mbit/s: 10 + 9000/960 = 19.375 s vs 22 s: -11.9 %
    assert cells[8] == "unlimited 960 Mbit/s: measured 22.0, projected 19.4 (-11.9%)"


def test_table2_uses_measured_rates_of_projection_links():
    records = cell("W2", 1, "nswap-3", [910.0], link_profile="10mbit", link_rate_mbit=10)
    records += cell("W2", 1, "nswap-3", [100.0], link_profile="100mbit", link_rate_mbit=100)
    records += [link("10mbit", 10, stream_mbs=1.0), link("100mbit", 100, stream_mbs=10.0)]
    (projection,) = tables.table2(results_of(records).runs, results_of(records).link_rates)
    assert [(p.rate_mbit, p.rate_source) for p in projection.points] == [
        (8.0, "measured"),
        (80.0, "measured"),
    ]
    assert projection.fit.link_mbit == pytest.approx(810 / (1 / 8 - 1 / 80))
    assert projection.validation_notes == ("no ordinary run to check against",)
    assert projection.disk_s is None


def test_table2_lab_link_with_its_own_rate_is_the_ordinary_run():
    records = cell("W1", 1, "nswap-1", [900.0, 920.0], link_profile="10mbit", link_rate_mbit=10)
    records += cell("W1", 1, "nswap-1", [100.0], link_profile="100mbit", link_rate_mbit=100)
    records += cell("W1", 1, "nswap-1", [20.0], link_profile="1gbit", link_rate_mbit=1000)
    records[-1]["projection"] = False
    results = results_of(records)
    (table,) = tables.table1(results.runs)
    assert table.link_profile == "1gbit"
    (projection,) = tables.table2(results.runs, results.link_rates)
    ((name, check),) = projection.validations
    assert (name, check.rate_mbit, check.measured_s) == ("1gbit", 1000, 20)
    assert check.projected_s == pytest.approx(19.0)


def test_table2_without_a_fit_says_why():
    records = cell("W1", 1, "nswap-1", [100.0], link_profile="10mbit", link_rate_mbit=10)
    records += cell("W1", 1, "nswap-1", [120.0], link_profile="100mbit", link_rate_mbit=100)
    results = results_of(records)
    text = report.render(results, report.chart_names(results))
    assert "no fit: the faster link was not faster (100 s at 10 Mbit/s, 120 s at 100" in text
    one_rate = results_of(records[:1])
    text = report.render(one_rate, report.chart_names(one_rate))
    assert "no fit: needs runs at two different link rates, has 1" in text


# --- the directory, CSV, PNG, CLI --------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    source = write_jsonl(base / "in.jsonl", fixture_records())
    report.write(source, base / "one")
    report.write(source, base / "two")
    return base


def test_directory_holds_every_file(written):
    assert sorted(os.listdir(written / "one")) == [
        "cells.csv",
        "projections.csv",
        "report.md",
        "results.jsonl",
        "runs.csv",
        "table1-ssd-unlimited.png",
        "table2-ssd.png",
    ]
    assert (written / "one" / "results.jsonl").read_bytes() == (written / "in.jsonl").read_bytes()
    for name in ("table1-ssd-unlimited.png", "table2-ssd.png"):
        assert (written / "one" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        "![Table 1 chart](table1-ssd-unlimited.png)" in (written / "one" / "report.md").read_text()
    )


def test_same_input_same_bytes(written):
    for name in os.listdir(written / "one"):
        assert (written / "one" / name).read_bytes() == (written / "two" / name).read_bytes(), name


def test_cells_csv(written):
    rows = list(csv.DictReader(io.StringIO((written / "one" / "cells.csv").read_text())))
    by_key = {(r["link_profile"], r["workload"], r["procs"], r["backend"]): r for r in rows}
    first = by_key["unlimited", "W1", "1", "nswap-1"]
    assert (first["mean_s"], first["stdev_s"], first["vs_disk"], first["significant"]) == (
        "22",
        "2",
        "1.8x slower",
        "true",
    )
    assert float(first["welch_p"]) == pytest.approx(0.0036022326)
    # the fixture's runs carry vmstat deltas but no block counters
    assert (first["pswpout_mean"], first["pswpin_mean"], first["read_ms_per_request"]) == (
        "2000",
        "1000",
        "",
    )
    flat = by_key["unlimited", "W2", "4", "nswap-1"]
    assert (flat["welch_p"], flat["note"]) == ("", "no variance on either side")
    failed = by_key["unlimited", "W1", "4", "nswap-1"]
    assert (failed["ok"], failed["failed"], failed["timeout"], failed["mean_s"]) == (
        "0",
        "2",
        "1",
        "",
    )
    assert by_key["10mbit", "W1", "1", "nswap-1"]["link_rate_mbit"] == "10"
    assert len(rows) == 11


def test_projections_and_runs_csv(written):
    (row,) = csv.DictReader(io.StringIO((written / "one" / "projections.csv").read_text()))
    assert (row["rates_mbit"], row["other_s"], row["link_mbit"]) == ("10 100", "10", "9000")
    assert (row["projected_s_1000mbit"], row["validation_rate_mbit"]) == ("19", "960")
    runs = list(csv.DictReader(io.StringIO((written / "one" / "runs.csv").read_text())))
    assert len(runs) == 25
    assert runs[0]["node"] == '{"cpus": 1, "mem_mib": 1024, "name": "client1"}'


def test_existing_report_is_kept_unless_forced(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", cell("W1", 1, "disk", [1.0, 2.0]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.png").write_text("old")
    with pytest.raises(report.ReportError, match="exists and is not empty; choose another --out"):
        report.write(source, out)
    bad = write_jsonl(tmp_path / "bad.jsonl", [run(status="done")])
    with pytest.raises(schema.SchemaError, match="bad.jsonl:1: field 'status'"):
        report.write(bad, out, force=True)
    assert os.listdir(out) == ["stale.png"]  # a failed report changes nothing
    assert sorted(os.listdir(tmp_path)) == ["bad.jsonl", "in.jsonl", "out"]
    report.write(source, out, force=True)
    assert "stale.png" not in os.listdir(out) and "report.md" in os.listdir(out)
    assert sorted(os.listdir(tmp_path)) == ["bad.jsonl", "in.jsonl", "out"]


def test_cli_exit_status_and_messages(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [run(), run(workload="W9")])
    assert cli.main(["check", str(bad)]) == 2
    assert "bad.jsonl:2: field 'workload' is \"W9\"" in capsys.readouterr().err
    assert cli.main(["check", str(tmp_path / "missing.jsonl")]) == 2
    assert "No such file" in capsys.readouterr().err
    good = write_jsonl(tmp_path / "good.jsonl", cell("W1", 1, "disk", [1.0], mismatches=2))
    assert cli.main(["check", str(good)]) == 0
    captured = capsys.readouterr()
    assert "1 runs, 0 link and 0 disk rate records" in captured.out
    assert "DATA CORRUPTION: 1 runs have mismatches > 0" in captured.err
    with pytest.raises(SystemExit) as caught:
        cli.main(["report", str(good), "--alpha", "5"])
    assert caught.value.code == 2


def test_checkout_script_writes_report_beside_the_results(tmp_path):
    """scripts/nswapbench in a fresh interpreter, from outside the checkout: report/ goes
    beside the results file (the benchmark role's layout), never into the checkout."""
    source = write_jsonl(tmp_path / "runs.jsonl", cell("W1", 1, "disk", [1.0, 2.0]))
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "nswapbench"), "report", str(source)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "report: %s" % (tmp_path / "report" / "report.md") in done.stdout


def test_same_records_change_nothing_and_check_mode_writes_nothing(tmp_path):
    source = write_jsonl(tmp_path / "runs.jsonl", cell("W1", 1, "disk", [1.0, 2.0]))
    out = tmp_path / "report"
    changed = report.write(source, out, check=True).changed
    assert changed and sorted(os.listdir(tmp_path)) == ["runs.jsonl"]
    changed = report.write(source, out).changed
    assert changed and "report.md" in os.listdir(out)
    before = {n: (out / n).stat().st_mtime_ns for n in os.listdir(out)}
    changed = report.write(source, out, force=True).changed
    assert not changed and before == {n: (out / n).stat().st_mtime_ns for n in os.listdir(out)}
    assert sorted(os.listdir(tmp_path)) == ["report", "runs.jsonl"]  # no staging left
    write_jsonl(source, cell("W1", 1, "disk", [1.0, 3.0]))
    changed = report.write(source, out, force=True, check=True).changed
    assert changed and before == {n: (out / n).stat().st_mtime_ns for n in os.listdir(out)}


def test_missing_library_is_named_with_the_fix_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(libraries, "MISSING", ["scipy"])
    monkeypatch.setattr(libraries, "REASONS", ["No module named 'scipy'"])
    source = write_jsonl(tmp_path / "runs.jsonl", cell("W1", 1, "disk", [1.0, 2.0]))
    with pytest.raises(libraries.MissingLibraries, match="needs scipy in the Python that runs"):
        report.write(source, tmp_path / "report")
    assert sorted(os.listdir(tmp_path)) == ["runs.jsonl"]
    assert cli.main(["report", str(source)]) == 1


def test_traffic_table_gives_counters_and_request_latency():
    # nswap-1: 2 runs, 16+8 pages read in 3 requests taking 12 ms: 4 ms/req, 8 pages/req;
    # 32 pages written in 6 requests taking 9 ms: 1.5 ms/req.  disk: no block counters.
    io = [
        dict(reads=2, read_sectors=128, read_ms=8, writes=3, write_sectors=128, write_ms=4),
        dict(reads=1, read_sectors=64, read_ms=4, writes=3, write_sectors=128, write_ms=5),
    ]
    records = cell("W2", 1, "disk", [30.0, 31.0])
    records += [
        run("W2", 1, "nswap-1", rep, 10.0, swap_io=i, pswpout=3000 + rep * 1000, pswpin=500)
        for rep, i in enumerate(io)
    ]
    records += [run("W2", 1, "nswap-1", 2, None, status="failed", mismatches=None, swap_io=io[0])]
    results = results_of(records)
    (table,) = tables.table1(results.runs)
    traffic = tables.traffic(table.rows[0].cells["nswap-1"])
    assert traffic.pswpout == 3500 and traffic.pswpin == 500
    assert (traffic.read_ms_per_request, traffic.pages_per_read) == (4, 8)
    assert (traffic.write_ms_per_request, traffic.pages_per_write) == (1.5, 32 / 6)
    text = report.render(results, report.chart_names(results))
    assert "### Why: swap traffic and swap-device requests (disk `ssd`, link `unlimited`)" in text
    why = text[text.index("### Why") :]
    row = [c.strip() for c in row_of(why, "| W2, 1 |").strip("|").split("|")]
    assert row[-1] == ("out 3.5k, in 500; read 4 ms/req x 8 pages; write 1.5 ms/req x 5.3 pages")
    assert row[-2] == "out 2.0k, in 1.0k"


def test_table1_chart_draws_whiskers_only_for_cells_with_a_stdev(tmp_path, monkeypatch):
    """A one-run bar (W3 x1 disk: 40 s) gets no zero-length whisker; 12 ± 2 gets one."""
    figures = []
    monkeypatch.setattr(charts, "_save", lambda figure, path: figures.append(figure))
    results = results_of(fixture_records())
    (table,) = [t for t in tables.table1(results.runs) if t.link_profile == "unlimited"]
    charts.table1_chart(table, tmp_path / "t.png")
    whiskers = {}
    for container in figures[0].axes[0].containers:
        if getattr(container, "errorbar", None) is None:
            continue  # not a BarContainer
        (segments,) = [c.get_segments() for c in container.errorbar.lines[2]]
        for bar, segment in zip(container.patches, segments, strict=True):
            drawn = len(segment) > 0 and not any(math.isnan(y) for _x, y in segment)
            whiskers[round(bar.get_height(), 6)] = (
                round(max(y for _x, y in segment) - min(y for _x, y in segment), 6)
                if drawn
                else None
            )
    assert whiskers[12.0] == 4.0  # mean 12, stdev 2: from 10 to 14
    assert whiskers[40.0] is None  # one run: no whisker
    assert whiskers[20.0] is None  # W3 x1 nswap-1: one timed run (the other was corrupt)


def test_shrink_runs_against_the_same_backend_without_the_shrink():
    """nswap-3 12 ± 2 s, nswap-3-shrink 18 ± 2 s (3 runs each): 1.5x slower, Welch t = 3.67,
    df = 4, p = 0.021 (significant); migrations 900, 1000, 1100: mean 1000 per run; the
    third shrink run did not shrink (shrunk false), so 2 of 3 shrank."""
    shrunk = dict(shrunk=True, at_s=1.5, used_pages=1400, limit_pages=700, error=None)
    records = cell("W1", 1, "disk", [30.0, 31.0])
    records += cell("W1", 1, "nswap-3", [10.0, 12.0, 14.0], migrations=0)
    records += [
        run("W1", 1, "nswap-3-shrink", 0, 16.0, migrations=900, shrink=shrunk),
        run("W1", 1, "nswap-3-shrink", 1, 18.0, migrations=1000, shrink=shrunk),
        run("W1", 1, "nswap-3-shrink", 2, 20.0, migrations=1100, shrink=dict(shrunk=False)),
    ]
    results = results_of(records)
    (table,) = tables.table1(results.runs)
    (entry,) = tables.shrink_rows(table)
    assert (entry.backend, entry.base, entry.migrations, entry.shrinks) == (
        "nswap-3-shrink",
        "nswap-3",
        1000,
        2,
    )
    assert entry.comparison.ratio == 1.5
    assert math.isclose(entry.comparison.welch.t, 3.674, abs_tol=1e-3)
    assert math.isclose(entry.comparison.welch.p, 0.0213, abs_tol=1e-3)
    text = report.render(results, report.chart_names(results))
    section = text[text.index("### A server shrinks mid-run (disk `ssd`, link `unlimited`)") :]
    row = [c.strip() for c in row_of(section, "| W1, 1 |").strip("|").split("|")]
    assert row == [
        "W1, 1",
        "nswap-3-shrink",
        "12.0 ± 2.0",
        "18.0 ± 2.0",
        "1.5x slower *",
        "1.0k (2 of 3 runs shrank)",
    ]
    # a shrink backend without its base: the row says so
    alone = results_of(cell("W2", 4, "nswap-3-shrink", [5.0], migrations=10, shrink=shrunk))
    text = report.render(alone, report.chart_names(alone))
    row = [
        c.strip()
        for c in row_of(text[text.index("### A server") :], "| W2, 4 |").strip("|").split("|")
    ]
    assert row[2:] == [
        "no runs",
        "5.0 (1 run)",
        "no nswap-3 runs in this row",
        "10 (1 of 1 runs shrank)",
    ]
    # no shrink backend, no section; the runs CSV keeps the shrink record as JSON
    assert "shrinks mid-run" not in report.render(
        results_of(cell("W1", 1, "disk", [1.0])), {("table1", "ssd", "unlimited"): "t1.png"}
    )
    runs = list(csv.DictReader(io.StringIO(report.runs_csv(results.runs))))
    assert runs[-1]["migrations"] == "1100" and runs[-1]["shrink"] == '{"shrunk": false}'
