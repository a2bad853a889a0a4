"""The report directory: the raw JSON lines, CSVs, report.md and PNG charts of one results file.

Everything written depends only on the input (no clock, sorted iteration, PNGs without
metadata), so the same input gives the same files.  The directory is built next to its
destination and renamed into place, so a failed report leaves the old one as it was.
"""

import csv
import dataclasses
import filecmp
import io
import json
import os
import shutil
import statistics
import tempfile

from . import amdahl, charts, libraries, schema, stats, tables

RAW_NAME = "results.jsonl"
REPORT_NAME = "report.md"
RUNS_CSV = "runs.csv"
CELLS_CSV = "cells.csv"
PROJECTIONS_CSV = "projections.csv"
RUN_COLUMNS = [field.name for field in dataclasses.fields(schema.Run)]
CELL_COLUMNS = [
    "disk_profile", "link_profile", "link_rate_mbit", "workload", "procs", "backend", "runs",
    "ok", "failed", "timeout", "corrupt", "mean_s", "stdev_s", "ratio_vs_disk", "vs_disk",
    "welch_t", "welch_df", "welch_p", "significant", "note",
    "pswpout_mean", "pswpin_mean", "read_ms_per_request", "pages_per_read",
    "write_ms_per_request", "pages_per_write",
]  # fmt: skip
PROJECTION_COLUMNS = [
    "disk_profile", "workload", "procs", "backend", "rates_mbit", "times_s", "fraction",
    "other_s", "link_mbit", "problem",
    *["projected_s_%dmbit" % r for r in amdahl.PROJECTION_RATES_MBIT],
    "validation_link", "validation_rate_mbit", "validation_projected_s", "validation_measured_s",
    "validation_error_pct",
]  # fmt: skip


class ReportError(RuntimeError):
    """The report could not be written; the message says why and what to do."""


# --- number formatting -----------------------------------------------------------------


def seconds(value, scale=None):
    """Seconds as the paper prints them (one decimal); below 1 s three significant digits.

    `scale` (a mean) makes a stdev use the same precision as its mean.
    """
    if value is None:
        return "-"
    if abs(scale if scale is not None else value) >= 1 or value == 0:
        return "%.1f" % value
    return "%.3g" % value


def number(value, digits=4):
    """A rate or a CSV number; whole numbers from 10^digits up without an exponent."""
    if value is None:
        return ""
    if abs(value) >= 10**digits:
        return "%.0f" % value
    return "%.*g" % (digits, value)


# --- Markdown pieces ---------------------------------------------------------------------


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _failures(cell):
    """Text like "3/5 ok (1 failed, 1 timeout)" when not every run counted; "" when all did."""
    if cell.complete:
        return ""
    parts = [
        "%d %s" % (cell.count(k), k) for k in ("failed", "timeout", "corrupt") if cell.count(k)
    ]
    text = "%d/%d ok (%s)" % (cell.count("ok"), len(cell.runs), ", ".join(parts))
    return "**%s**" % text if cell.count("corrupt") else text


def _time_text(cell):
    summary = cell.summary
    if summary.mean is None:
        return "no time"
    if summary.stdev is None:
        return "%s (1 run)" % seconds(summary.mean)
    return "%s ± %s" % (seconds(summary.mean), seconds(summary.stdev, scale=summary.mean))


def cell_text(cell, comparison, alpha):
    """One Table 1 cell: time, comparison with disk, failures."""
    if cell is None:
        return "no runs"
    parts = [_time_text(cell)]
    if comparison is not None:
        if comparison.ratio is None:
            parts.append("(%s)" % comparison.reason)
        elif comparison.welch.reason == stats.TOO_FEW_RUNS:
            # "How to read" says a single run gets no t-test; the cell says "1 run"
            parts.append("(%s)" % comparison.label)
        elif comparison.welch.p is None:
            parts.append("(%s; t-test n/a: %s)" % (comparison.label, comparison.welch.reason))
        else:
            mark = " *" if comparison.welch.significant(alpha) else ""
            parts.append("(%s%s)" % (comparison.label, mark))
    failures = _failures(cell)
    if failures:
        parts.append(failures)
    return " ".join(parts)


def corruption_lines(runs):
    bad = [run for run in runs if run.corrupt]
    if not bad:
        unknown = sum(1 for run in runs if run.mismatches is None)
        text = "No run read back a wrong page (mismatches = 0 in all %d runs that checked" % (
            len(runs) - unknown
        )
        if unknown:
            text += "; %d failed before checking" % unknown
        return [text + ")."]
    lines = [
        "> **DATA CORRUPTION: %d of %d runs read back wrong pages (mismatches > 0).  Their "
        "times are left out of every table; the swap path lost or mixed up data.**"
        % (len(bad), len(runs)),
        ">",
    ]
    for run in bad:
        lines.append(
            "> - line %d: %s x%d on %s (disk %s, link %s), repetition %d: %d mismatched pages"
            % (
                run.line,
                run.workload,
                run.procs,
                run.backend,
                run.disk_profile,
                run.link_profile,
                run.repetition,
                run.mismatches,
            )
        )
    return lines


def raw_rate_lines(results):
    lines = ["## Raw rates measured", ""]
    if results.link_rates:
        grouped = {}
        for record in results.link_rates:
            grouped.setdefault(record.link_profile, []).append(record)
        rows = []
        for profile, records in sorted(grouped.items()):
            stream = statistics.fmean(r.stream_mbs for r in records)
            limit = records[0].link_rate_mbit
            rtt = statistics.fmean(r.rtt_4k_us for r in records)
            limit = "none" if limit is None else "%g Mbit/s" % limit
            mbit = stream * tables.BITS_PER_BYTE
            rows.append([profile, limit, number(stream), number(mbit), number(rtt), len(records)])
        header = [
            "link profile",
            "tc limit",
            "stream MB/s",
            "stream Mbit/s",
            "4 KiB RTT µs",
            "records",
        ]
        lines += _table(header, rows) + [""]
    else:
        lines += ['No link rates were measured (no kind "link" records).', ""]
    if results.disk_rates:
        grouped = {}
        for record in results.disk_rates:
            grouped.setdefault(record.disk_profile, []).append(record)
        rows = []
        for profile, records in sorted(grouped.items()):
            seq = statistics.fmean(r.seq_mbs for r in records)
            rows.append(
                [
                    profile,
                    number(seq),
                    number(seq * tables.BITS_PER_BYTE),
                    number(statistics.fmean(r.rand_4k_iops for r in records)),
                    len(records),
                ]
            )
        header = ["disk profile", "seq MB/s", "seq Mbit/s", "rand 4 KiB IOPS", "records"]
        lines += _table(header, rows) + [""]
    else:
        lines += ['No disk rates were measured (no kind "disk" records).', ""]
    lines += ["Means over the records; MB = 10^6 bytes, Mbit = 10^6 bits.", ""]
    return lines


def _rows_text(entries):
    return ", ".join("%s x%d%s" % (w, p, "*" if sig else "") for w, p, sig in entries) or "none"


def crossover_lines(table, alpha):
    lines = []
    for backend, (wins, losses) in tables.crossover(table, alpha).items():
        compared = len(wins) + len(losses)
        lines.append(
            "- **%s** is faster than disk in %d of %d rows: %s; slower in: %s."
            % (backend, len(wins), compared, _rows_text(wins), _rows_text(losses))
        )
    return lines


def table1_lines(table, chart_name, alpha):
    header = ["workload, procs"] + list(table.backends)
    rows = []
    for row in table.rows:
        cells = [
            cell_text(row.cells.get(backend), row.comparisons.get(backend), alpha)
            for backend in table.backends
        ]
        rows.append(["%s, %d" % (row.workload, row.procs)] + cells)
    title = "## Table 1: disk profile `%s`, link profile `%s`" % (
        table.disk_profile,
        table.link_profile,
    )
    lines = [title, ""] + _table(header, rows) + [""]
    lines += ["Crossover (where a backend beats disk here; * significant):", ""]
    lines += crossover_lines(table, alpha) + ["", "![Table 1 chart](%s)" % chart_name, ""]
    return lines + traffic_lines(table) + shrink_lines(table, alpha)


def shrink_lines(table, alpha):
    """A server that shrinks mid-run against the same runs without the shrink."""
    entries = tables.shrink_rows(table)
    if not entries:
        return []
    header = ["workload, procs", "shrink backend", "without the shrink", "with it", "slowdown"]
    header += ["pages moved per run"]
    rows = []
    for e in entries:
        row = table_row(table, e.workload, e.procs)
        slowdown = e.comparison.reason or e.comparison.label
        if e.comparison.welch is not None and e.comparison.welch.significant(alpha):
            slowdown += " *"
        base = row.cells.get(e.base)
        rows.append(
            [
                "%s, %d" % (e.workload, e.procs),
                e.backend,
                _time_text(base) if base is not None else "no runs",
                _time_text(row.cells[e.backend]),
                slowdown,
                "%s (%d of %d runs shrank)"
                % (_count(e.migrations), e.shrinks, len(row.cells[e.backend].runs)),
            ]
        )
    return _profile_section(
        "A server shrinks mid-run",
        table,
        header,
        rows,
        "The shrink backend's first server, once it holds half its share of the run's "
        "swap-out, has its cache limit set to half its use; its pages over the limit move "
        "to the other servers, and the client follows each move (nswap.ko's `migrations` "
        "counter, per timed run).  Slowdown: the shrink runs' time against the same "
        "backend's without it; `*` marks a difference Welch's t-test finds significant "
        "(p < %g)." % alpha,
    )


def _profile_section(what, table, header, rows, notes):
    """A titled table of one (disk profile, link profile) pair, with its notes below."""
    title = "### %s (disk `%s`, link `%s`)" % (what, table.disk_profile, table.link_profile)
    return [title, ""] + _table(header, rows) + ["", notes, ""]


def table_row(table, workload, procs):
    for row in table.rows:
        if (row.workload, row.procs) == (workload, procs):
            return row
    raise KeyError((workload, procs))


def _count(value):
    if value is None:
        return "-"
    return "%.1fk" % (value / 1000.0) if value >= 1000 else "%d" % round(value)


def _requests_text(what, ms, pages):
    if ms is None:
        return None
    return "%s %s ms/req x %s pages" % (what, number(ms, 3), number(pages, 2))


def traffic_text(cell):
    if cell is None:
        return "not run"
    t = tables.traffic(cell)
    if t.pswpout is None:
        return "no timed run"
    parts = ["out %s, in %s" % (_count(t.pswpout), _count(t.pswpin))]
    for what, ms, pages in (
        ("read", t.read_ms_per_request, t.pages_per_read),
        ("write", t.write_ms_per_request, t.pages_per_write),
    ):
        text = _requests_text(what, ms, pages)
        if text:
            parts.append(text)
    return "; ".join(parts)


def traffic_lines(table):
    """Why a cell is fast or slow: what swapped, and what a page cost on the swap device."""
    header = ["workload, procs"] + list(table.backends)
    rows = [
        ["%s, %d" % (row.workload, row.procs)]
        + [traffic_text(row.cells.get(backend)) for backend in table.backends]
        for row in table.rows
    ]
    return _profile_section(
        "Why: swap traffic and swap-device requests",
        table,
        header,
        rows,
        "Means over the timed runs: pages swapped out and in (`/proc/vmstat` pswpout/pswpin "
        "deltas); from the swap device's `/sys/block/<dev>/stat` deltas, the mean time a "
        "request was in flight (queueing included) and its size in 4 KiB pages.  A faulting "
        "process waits for its read; writes go out in the background, many at once, so their "
        "time is mostly queueing.",
    )


def crossover_summary_lines(tables1, alpha):
    """One line per profile pair: the crossover at a glance when several disk profiles ran."""
    backends = tables.backend_order(b for t in tables1 for b in t.backends)
    others = [b for b in backends if b != schema.REFERENCE_BACKEND]
    if len(tables1) < 2 or not others:
        return []
    rows = []
    for table in tables1:
        result = tables.crossover(table, alpha)
        row = [table.disk_profile, table.link_profile]
        for backend in others:
            if backend not in result:
                row.append("not run")
                continue
            wins, losses = result[backend]
            row.append("%d/%d: %s" % (len(wins), len(wins) + len(losses), _rows_text(wins)))
        rows.append(row)
    header = ["disk profile", "link profile"] + ["%s faster than disk in" % b for b in others]
    return ["## Crossover by profile", ""] + _table(header, rows) + [""]


def _projection_cell(projection, rate):
    if projection.fit is None:
        return "-"
    time_s = projection.fit.time_at(rate)
    text = "%s (%.1fx)" % (seconds(time_s), projection.fit.speedup_at(rate))
    ratio = stats.time_ratio(time_s, projection.disk_s)
    if ratio is not None:
        text += ", %s than disk" % stats.speed_label(ratio)
    return text


def _point_text(point):
    """ "100mbit 94.1 Mbit/s: 812.3" (+ " (nominal)" without a measured rate, + failures)."""
    text = "%s %s Mbit/s" % (point.link_profile, number(point.rate_mbit))
    if point.rate_source != "measured":
        text += " (nominal)"
    text += ": %s" % seconds(point.cell.summary.mean)
    if not point.cell.complete:
        text += " [%s]" % _failures(point.cell)
    return text


def table2_lines(projections, chart_names):
    if not projections:
        return [
            "## Table 2: projection to faster links",
            "",
            "No projection runs (runs at rates chosen for the fit), so nothing to project.",
            "",
        ]
    gbits = ["%g Gbit" % (r / amdahl.GBIT) for r in amdahl.PROJECTION_RATES_MBIT]
    header = ["disk", "workload, procs, backend", "measured (rate: time)", "f", "other s"]
    header += gbits + ["validation: ordinary run"]
    rows = []
    for p in projections:
        measured = "; ".join(_point_text(point) for point in p.points)
        if p.fit is None:
            row = [p.disk_profile, "%s, %d, %s" % (p.workload, p.procs, p.backend), measured]
            row += ["-", "-"] + ["-"] * len(gbits) + ["no fit: %s" % p.problem]
            rows.append(row)
            continue
        checks = [
            "%s %s Mbit/s: measured %s, projected %s (%+.1f%%)"
            % (
                link,
                number(v.rate_mbit),
                seconds(v.measured_s),
                seconds(v.projected_s),
                v.error_pct,
            )
            for link, v in p.validations
        ] + list(p.validation_notes)
        row = [p.disk_profile, "%s, %d, %s" % (p.workload, p.procs, p.backend), measured]
        row += ["%.3f" % p.fit.fraction, seconds(p.fit.other_s)]
        row += [_projection_cell(p, rate) for rate in amdahl.PROJECTION_RATES_MBIT]
        rows.append(row + ["; ".join(checks) or "-"])
    lines = ["## Table 2: projection to faster links", ""] + _table(header, rows) + [""]
    lines += [
        "Model T(rate) = other + link_Mbit / rate fitted to the projection runs' means (the "
        "paper's Amdahl fit; f = the link's share of the time at the slowest rate).  Rates are "
        "the measured stream rates of the link profiles, the tc limit (nominal) where none was "
        "measured.  Projected cells: time (speedup over the slowest fitted rate) and the "
        "comparison with the disk cell of the same disk profile.  Validation: the model at the "
        "ordinary runs' link rate against their measured mean; error = (projected - measured) / "
        "measured.",
        "",
    ]
    lines += ["![Table 2 chart](%s)" % name for name in chart_names] + [""]
    return lines


def facts_lines(runs):
    lines = ["## What ran", ""]
    for label, values in (
        ("kernels", sorted({r.kernel for r in runs})),
        ("commits", sorted({r.commit for r in runs})),
        ("node facts", sorted({json.dumps(r.node, sort_keys=True) for r in runs})),
    ):
        lines.append("- %s: %s" % (label, "; ".join("`%s`" % v for v in values) or "none"))
    return lines + [""]


def render(results, chart_names, alpha=stats.ALPHA, source=RAW_NAME):
    """report.md as a string."""
    tables1 = tables.table1(results.runs)
    projections = tables.table2(results.runs, results.link_rates)
    limited = sum(1 for run in results.runs if run.projection)
    lines = ["# nswap benchmark report", ""]
    lines += corruption_lines(results.runs) + [""]
    lines += [
        "Input: `%s`: %d runs (%d projection runs, for Table 2), %d link and %d disk "
        "rate records."
        % (source, len(results.runs), limited, len(results.link_rates), len(results.disk_rates)),
        "",
        "How to read Table 1: mean ± sample stdev of the wall time in seconds over the runs that "
        "finished with every byte verified; in brackets the backend's time against the disk "
        'cell of its row, as in the paper ("4.6x slower"); `*` marks a difference that '
        'Welch\'s two-sided t-test finds significant (p < %g).  "3/5 ok (2 failed)": only 3 of '
        "5 runs count.  One run gives no stdev and no t-test." % alpha,
        "",
    ]
    lines += raw_rate_lines(results)
    for table in tables1:
        lines += table1_lines(
            table, chart_names["table1", table.disk_profile, table.link_profile], alpha
        )
    if not tables1:
        lines += ["## Table 1", "", "Only projection runs: nothing to compare with disk.", ""]
    lines += crossover_summary_lines(tables1, alpha)
    disk_profiles = sorted({p.disk_profile for p in projections})
    lines += table2_lines(projections, [chart_names["table2", d] for d in disk_profiles])
    lines += facts_lines(results.runs)
    return "\n".join(lines).rstrip("\n") + "\n"


# --- CSV ---------------------------------------------------------------------------------


def _csv(columns, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def runs_csv(runs):
    rows = []
    for run in runs:
        values = dataclasses.asdict(run)
        values["node"] = json.dumps(run.node, sort_keys=True)
        for field in ("swap_io", "shrink"):
            if values[field] is not None:
                values[field] = json.dumps(values[field], sort_keys=True)
        rows.append(["" if values[c] is None else values[c] for c in RUN_COLUMNS])
    return _csv(RUN_COLUMNS, rows)


def cells_csv(runs, alpha):
    tables1 = tables.table1(runs)
    comparisons = {
        (t.disk_profile, t.link_profile, row.workload, row.procs, backend): comparison
        for t in tables1
        for row in t.rows
        for backend, comparison in row.comparisons.items()
    }
    rate = {run.link_profile: run.link_rate_mbit for run in runs}
    rows = []
    for key, cell in sorted(tables.group_cells(runs).items()):
        disk_profile, link_profile, workload, procs, backend = key
        comparison = comparisons.get(key)
        welch = comparison.welch if comparison else None
        s = cell.summary
        rows.append(
            [
                disk_profile,
                link_profile,
                number(rate[link_profile], 12),
                workload,
                procs,
                backend,
                len(cell.runs),
                cell.count("ok"),
                cell.count("failed"),
                cell.count("timeout"),
                cell.count("corrupt"),
                number(s.mean, 12),
                number(s.stdev, 12),
                number(comparison.ratio if comparison else None, 12),
                (comparison.label or "") if comparison else "",
                number(welch.t if welch else None, 12),
                number(welch.df if welch else None, 12),
                number(welch.p if welch else None, 12),
                "" if welch is None or welch.p is None else str(welch.significant(alpha)).lower(),
                (comparison.reason or (welch.reason if welch else None) or "")
                if comparison
                else "",
            ]
            + [number(value, 12) for value in dataclasses.astuple(tables.traffic(cell))]
        )
    return _csv(CELL_COLUMNS, rows)


def projections_csv(projections):
    rows = []
    for p in projections:
        checks = list(p.validations) or [(None, None)]
        for link, v in checks:
            fit = p.fit
            rows.append(
                [
                    p.disk_profile,
                    p.workload,
                    p.procs,
                    p.backend,
                    " ".join(number(point.rate_mbit, 12) for point in p.points),
                    " ".join(number(point.cell.summary.mean, 12) for point in p.points),
                    number(fit.fraction if fit else None, 12),
                    number(fit.other_s if fit else None, 12),
                    number(fit.link_mbit if fit else None, 12),
                    p.problem or "",
                    *[
                        number(fit.time_at(r), 12) if fit else ""
                        for r in amdahl.PROJECTION_RATES_MBIT
                    ],
                    link or "",
                    number(v.rate_mbit if v else None, 12),
                    number(v.projected_s if v else None, 12),
                    number(v.measured_s if v else None, 12),
                    number(v.error_pct if v else None, 12),
                ]
            )
    return _csv(PROJECTION_COLUMNS, rows)


# --- the directory -----------------------------------------------------------------------


def chart_names(results):
    names = {}
    for table in tables.table1(results.runs):
        key = ("table1", table.disk_profile, table.link_profile)
        names[key] = "table1-%s-%s.png" % key[1:]
    for disk_profile in sorted({r.disk_profile for r in results.runs if r.projection}):
        names["table2", disk_profile] = "table2-%s.png" % disk_profile
    return names


def build(source_path, directory, alpha=stats.ALPHA):
    """Write every file of the report into the existing empty directory."""
    results = schema.load(source_path)
    names = chart_names(results)
    shutil.copyfile(source_path, os.path.join(directory, RAW_NAME))
    files = {
        REPORT_NAME: render(results, names, alpha),
        RUNS_CSV: runs_csv(results.runs),
        CELLS_CSV: cells_csv(results.runs, alpha),
        PROJECTIONS_CSV: projections_csv(tables.table2(results.runs, results.link_rates)),
    }
    for name, text in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    for table in tables.table1(results.runs):
        name = names["table1", table.disk_profile, table.link_profile]
        charts.table1_chart(table, os.path.join(directory, name))
    projections = tables.table2(results.runs, results.link_rates)
    for disk_profile in sorted({p.disk_profile for p in projections}):
        mine = [p for p in projections if p.disk_profile == disk_profile]
        charts.table2_chart(mine, os.path.join(directory, names["table2", disk_profile]))
    return results


def same_files(new, old):
    """True when directory `old` holds exactly the files of `new`, byte for byte (the
    report is deterministic: the same records give the same bytes, PNGs included)."""
    if not os.path.isdir(old):
        return False
    names = sorted(os.listdir(new))
    if names != sorted(os.listdir(old)):
        return False
    return all(
        filecmp.cmp(os.path.join(new, n), os.path.join(old, n), shallow=False) for n in names
    )


@dataclasses.dataclass(frozen=True)
class Written:
    results: schema.Results
    changed: bool  # False: `out` already held these very files
    text: str  # report.md
    files: list  # the directory's file names, sorted


def write(source_path, out, force=False, alpha=stats.ALPHA, check=False):
    """Build the report in a staging directory, then put it in place of `out`, unless `out`
    already holds the same files.  With check=True nothing is put in place: the staging
    directory is a temporary one, removed afterwards."""
    libraries.require()
    out = os.path.abspath(out)
    if os.path.isdir(out) and os.listdir(out) and not force:
        raise ReportError("%s exists and is not empty; choose another --out or pass --force" % out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ReportError("%s exists and is not a directory; choose another --out" % out)
    if check:
        staging = tempfile.mkdtemp(prefix="nswapbench-check-")
    else:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        staging = "%s.new-%d" % (out, os.getpid())
        os.mkdir(staging)
    old = "%s.old-%d" % (out, os.getpid())
    try:
        results = build(source_path, staging, alpha)
        changed = not same_files(staging, out)
        with open(os.path.join(staging, REPORT_NAME), encoding="utf-8") as handle:
            text = handle.read()
        files = sorted(os.listdir(staging))
        if changed and not check:
            if os.path.isdir(out):
                os.rename(out, old)
            try:
                os.rename(staging, out)
            except OSError:
                if os.path.isdir(old):
                    os.rename(old, out)  # put the previous report back
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return Written(results, changed, text, files)
