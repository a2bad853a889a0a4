"""Runs grouped into the paper's two tables, as data (report.py and charts.py render them).

Table 1 (one per disk profile x link profile of the ordinary runs): rows workload x procs,
columns backends, each cell the timed runs' mean and stdev, compared with the disk cell of its
row (time ratio, Welch's t-test).  Projection runs (``projection``: at rates chosen for the
fit) are Table 2's input: per disk profile, workload, procs and backend, the mean times at
those rates are fitted (amdahl.py), projected to 1/10/25 Gbit and checked against the same
cell's ordinary run (at its link's measured rate).
"""

import collections
import dataclasses
import statistics

from . import amdahl, stats
from .schema import REFERENCE_BACKEND, SWAP_IO_FIELDS

BITS_PER_BYTE = 8  # MB/s (10^6 bytes) -> Mbit/s (10^6 bits)


@dataclasses.dataclass(frozen=True)
class Cell:
    runs: tuple  # every run of the cell, timed or not
    summary: stats.Summary  # of the timed runs' wall_s

    @property
    def times(self):
        return [run.wall_s for run in self.runs if run.timed]

    def count(self, what):
        """Runs that are: "ok" (timed), "failed", "timeout" or "corrupt" (mismatches > 0)."""
        if what == "ok":
            return len(self.times)
        if what == "corrupt":
            return sum(1 for run in self.runs if run.corrupt)
        return sum(1 for run in self.runs if run.status == what and not run.corrupt)

    @property
    def complete(self):
        return self.count("ok") == len(self.runs)


@dataclasses.dataclass(frozen=True)
class Comparison:
    ratio: float | None  # backend time / disk time; None with a reason
    welch: stats.Welch | None
    reason: str | None

    @property
    def label(self):
        return stats.speed_label(self.ratio)


@dataclasses.dataclass(frozen=True)
class Row:
    workload: str
    procs: int
    cells: dict  # backend -> Cell (missing: no runs)
    comparisons: dict  # non-reference backend -> Comparison


@dataclasses.dataclass(frozen=True)
class Table1:
    disk_profile: str
    link_profile: str
    backends: tuple  # disk first
    rows: tuple


@dataclasses.dataclass(frozen=True)
class Point:
    link_profile: str
    rate_mbit: float  # the rate used in the fit
    rate_source: str  # "measured" (link record) or "nominal" (link_rate_mbit)
    cell: Cell


@dataclasses.dataclass(frozen=True)
class Projection:
    disk_profile: str
    workload: str
    procs: int
    backend: str
    points: tuple  # Points at the limited rates, slowest first
    fit: amdahl.Fit | None
    problem: str | None  # why there is no fit
    validations: tuple  # (link_profile, Validation) per ordinary link profile of the cell
    validation_notes: tuple  # why a validation could not be made
    disk_s: float | None  # the disk cell's mean in this disk profile (ordinary runs)


SECTORS_PER_PAGE = 8  # /sys/block/<dev>/stat counts 512-byte sectors; swap moves 4 KiB pages


@dataclasses.dataclass(frozen=True)
class Traffic:
    """What a cell's timed runs swapped, and what its swap device's requests cost."""

    pswpout: float | None  # mean pages swapped out per run
    pswpin: float | None  # mean pages swapped in per run
    read_ms_per_request: float | None  # mean time a read request was in flight (queueing too)
    pages_per_read: float | None  # pages per read request (readahead, merging)
    write_ms_per_request: float | None
    pages_per_write: float | None


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _ratio(numerator, denominator):
    return numerator / denominator if denominator else None


def traffic(cell):
    """The cell's swap counters (vmstat) and its swap device's request latency and size
    (block stat).  A faulting process waits for its read request, so read latency is the
    per-page cost it sees; writes go out in the background, many in flight at once."""
    timed = [run for run in cell.runs if run.timed]
    io = [run.swap_io for run in timed if run.swap_io]
    total = {key: sum(i[key] for i in io) for key in SWAP_IO_FIELDS}
    return Traffic(
        pswpout=_mean(run.pswpout for run in timed),
        pswpin=_mean(run.pswpin for run in timed),
        read_ms_per_request=_ratio(total["read_ms"], total["reads"]),
        pages_per_read=_ratio(total["read_sectors"] / SECTORS_PER_PAGE, total["reads"]),
        write_ms_per_request=_ratio(total["write_ms"], total["writes"]),
        pages_per_write=_ratio(total["write_sectors"] / SECTORS_PER_PAGE, total["writes"]),
    )


def backend_order(backends):
    """The reference first, then the others by name."""
    return tuple(sorted(set(backends), key=lambda name: (name != REFERENCE_BACKEND, name)))


def group_cells(runs):
    """(disk_profile, link_profile, workload, procs, backend) -> Cell.

    A link profile's runs are either all projection runs or all ordinary ones (a projection
    rate gets its own profile name), so the key needs no projection flag.
    """
    grouped = collections.defaultdict(list)
    for run in runs:
        grouped[(run.disk_profile, run.link_profile, run.workload, run.procs, run.backend)].append(
            run
        )
    return {
        key: Cell(tuple(group), stats.summarize(r.wall_s for r in group if r.timed))
        for key, group in grouped.items()
    }


def compare(cell, reference):
    """A backend's cell against the disk cell of the same row."""
    if reference is None:
        return Comparison(None, None, "no disk runs in this row")
    if reference.summary.mean is None:
        return Comparison(None, None, "no disk run finished")
    if cell.summary.mean is None:
        return Comparison(None, None, "no run finished")
    ratio = stats.time_ratio(cell.summary.mean, reference.summary.mean)
    return Comparison(ratio, stats.welch(cell.times, reference.times), None)


def table1(runs):
    """Table 1 per (disk profile, link profile) of the ordinary (not projection) runs."""
    cells = group_cells(run for run in runs if not run.projection)
    groups = sorted({key[:2] for key in cells})
    tables = []
    for disk_profile, link_profile in groups:
        mine = {
            key[2:]: cell for key, cell in cells.items() if key[:2] == (disk_profile, link_profile)
        }
        backends = backend_order(key[2] for key in mine)
        rows = []
        for workload, procs in sorted({key[:2] for key in mine}):
            row_cells = {
                b: mine[(workload, procs, b)] for b in backends if (workload, procs, b) in mine
            }
            reference = row_cells.get(REFERENCE_BACKEND)
            comparisons = {
                b: compare(cell, reference)
                for b, cell in row_cells.items()
                if b != REFERENCE_BACKEND
            }
            rows.append(Row(workload, procs, row_cells, comparisons))
        tables.append(Table1(disk_profile, link_profile, backends, tuple(rows)))
    return tables


SHRINK_SUFFIX = "-shrink"  # a backend whose server shrinks mid-run, beside the one that does not


@dataclasses.dataclass(frozen=True)
class ShrinkRow:
    workload: str
    procs: int
    backend: str  # e.g. nswap-3-shrink
    base: str  # the same without the shrink, e.g. nswap-3
    comparison: Comparison  # ratio: shrink time / base time
    migrations: float | None  # mean pages moved (and followed) per timed shrink run
    shrinks: int  # timed runs in which the server did shrink


def shrink_rows(table):
    """Each row's shrink backends against the same backend without the shrink: the slowdown
    a server shrinking mid-run costs, and how many pages moved.  A row without the base
    backend gets a comparison that says so."""
    rows = []
    for row in table.rows:
        for backend, cell in sorted(row.cells.items()):
            if not backend.endswith(SHRINK_SUFFIX):
                continue
            base = backend[: -len(SHRINK_SUFFIX)]
            if base in row.cells:
                comparison = compare(cell, row.cells[base])
                if comparison.reason == "no disk run finished":
                    comparison = Comparison(None, None, "no %s run finished" % base)
            else:
                comparison = Comparison(None, None, "no %s runs in this row" % base)
            timed = [run for run in cell.runs if run.timed]
            rows.append(
                ShrinkRow(
                    row.workload,
                    row.procs,
                    backend,
                    base,
                    comparison,
                    _mean(run.migrations for run in timed),
                    sum(1 for run in timed if (run.shrink or {}).get("shrunk")),
                )
            )
    return rows


def crossover(table, alpha=stats.ALPHA):
    """Per non-disk backend: (rows it wins, rows it loses, rows with significance marks).

    Each list holds (workload, procs, significant) for the rows with a ratio.
    """
    result = {}
    for backend in table.backends:
        if backend == REFERENCE_BACKEND:
            continue
        wins, losses = [], []
        for row in table.rows:
            comparison = row.comparisons.get(backend)
            if comparison is None or comparison.ratio is None:
                continue
            entry = (row.workload, row.procs, comparison.welch.significant(alpha))
            (wins if comparison.ratio < 1 else losses).append(entry)
        result[backend] = (wins, losses)
    return result


def measured_link_mbit(link_rates):
    """link_profile -> mean measured stream rate in Mbit/s."""
    grouped = collections.defaultdict(list)
    for record in link_rates:
        grouped[record.link_profile].append(record.stream_mbs * BITS_PER_BYTE)
    return {profile: statistics.fmean(values) for profile, values in grouped.items()}


def table2(runs, link_rates):
    """Projections per (disk profile, workload, procs, backend) with projection runs."""
    measured = measured_link_mbit(link_rates)
    fitted = group_cells(run for run in runs if run.projection)
    ordinary = group_cells(run for run in runs if not run.projection)
    nominal = {run.link_profile: run.link_rate_mbit for run in runs}
    projections = []
    for disk_profile, workload, procs, backend in sorted({(k[0],) + k[2:] for k in fitted}):
        mine = (disk_profile, workload, procs, backend)
        points = []
        for (d, link, w, p, b), cell in sorted(fitted.items()):
            if (d, w, p, b) == mine and link in measured:
                points.append(Point(link, measured[link], "measured", cell))
            elif (d, w, p, b) == mine:
                points.append(Point(link, nominal[link], "nominal", cell))
        points.sort(key=lambda point: point.rate_mbit)
        model, problem = _fit(points)
        checks = [(k[1], c) for k, c in sorted(ordinary.items()) if (k[0],) + k[2:] == mine]
        validations, notes = [], []
        for link, cell in checks if model is not None else ():
            rate = measured.get(link, nominal[link])
            if cell.summary.mean is None:
                notes.append("%s: no run finished" % link)
            elif rate is None:
                notes.append('%s: no measured link rate (a kind "link" record)' % link)
            else:
                validations.append((link, amdahl.validate(model, rate, cell.summary.mean)))
        if model is not None and not checks:
            notes.append("no ordinary run to check against")
        disk = _disk_mean(ordinary, disk_profile, workload, procs)
        projections.append(
            Projection(
                disk_profile,
                workload,
                procs,
                backend,
                tuple(points),
                model,
                problem,
                tuple(validations),
                tuple(notes),
                disk,
            )
        )
    return projections


def _fit(points):
    timed = [(point.rate_mbit, point.cell.summary.mean) for point in points]
    missing = [point.link_profile for point in points if point.cell.summary.mean is None]
    if missing:
        return None, "no run finished at %s" % ", ".join(missing)
    if len({rate for rate, _mean in timed}) < len(timed):
        return None, "two link profiles have the same rate: %s" % timed
    try:
        return amdahl.fit(timed), None
    except amdahl.FitError as err:
        return None, str(err)


def _disk_mean(cells, disk_profile, workload, procs):
    """The disk cell's mean of this row (of the first link profile by name that has one)."""
    for (d, _link, w, p, b), cell in sorted(cells.items()):
        if (d, w, p, b) == (disk_profile, workload, procs, REFERENCE_BACKEND):
            return cell.summary.mean
    return None
