"""PNG charts of the report: Table 1 as grouped bars, Table 2 as time against link rate.

matplotlib's Agg backend (no display needed; libraries.py chooses it); the PNGs carry no
software/version metadata, so the same input gives the same bytes.
"""

from . import amdahl
from .libraries import pyplot as plt

DPI = 100
PNG_METADATA = {"Software": None}  # no matplotlib version in the file: same input, same bytes
BAR_GROUP_WIDTH = 0.8


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    plt.close(figure)


def table1_chart(table, path):
    """Bars: one group per workload x procs row, one bar per backend (mean; a stdev whisker
    only where the cell has one, i.e. two or more timed runs)."""
    labels = ["%s x%d" % (row.workload, row.procs) for row in table.rows]
    width = BAR_GROUP_WIDTH / len(table.backends)
    figure, axes = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4.5))
    for index, backend in enumerate(table.backends):
        xs, means, errors = [], [], []
        for position, row in enumerate(table.rows):
            cell = row.cells.get(backend)
            if cell is None or cell.summary.mean is None:
                continue  # no bar: the table says why
            xs.append(position - BAR_GROUP_WIDTH / 2 + (index + 0.5) * width)
            means.append(cell.summary.mean)
            # NaN: matplotlib draws no whisker (a one-run bar has no spread to show)
            errors.append(cell.summary.stdev if cell.summary.stdev is not None else float("nan"))
        axes.bar(xs, means, width, yerr=errors, capsize=3, label=backend)
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylabel("wall time, s (mean; whiskers: stdev of 2+ runs)")
    axes.set_title("disk profile %s, link %s" % (table.disk_profile, table.link_profile))
    axes.legend(fontsize="small")
    axes.grid(axis="y", alpha=0.3)
    _save(figure, path)


def table2_chart(projections, path):
    """Time against link rate (log axes): measured means, the fitted model, validation runs."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    top = max(amdahl.PROJECTION_RATES_MBIT)
    for projection in projections:
        label = "%s x%d %s" % (projection.workload, projection.procs, projection.backend)
        timed = [point for point in projection.points if point.cell.summary.mean is not None]
        rates = [point.rate_mbit for point in timed]
        means = [point.cell.summary.mean for point in timed]
        line = axes.plot(rates, means, "o", label=label)[0]
        if projection.fit is not None:
            lowest = projection.fit.rates_mbit[0]
            grid = [lowest * (top / lowest) ** (step / 50) for step in range(51)]
            axes.plot(grid, [projection.fit.time_at(r) for r in grid], "-", color=line.get_color())
        for _link_profile, validation in projection.validations:
            axes.plot([validation.rate_mbit], [validation.measured_s], "x", color=line.get_color())
    for rate in amdahl.PROJECTION_RATES_MBIT:
        axes.axvline(rate, color="grey", alpha=0.3)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("link rate, Mbit/s (o fitted runs, - model, x ordinary run)")
    axes.set_ylabel("wall time, s")
    axes.set_title("disk profile %s: projection to faster links" % projections[0].disk_profile)
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    _save(figure, path)
