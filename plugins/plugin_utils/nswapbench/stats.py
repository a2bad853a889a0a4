"""The report's statistics: mean and sample stdev of a cell, time ratios, Welch's t-test.

Welch's test is scipy.stats.ttest_ind(equal_var=False); the degenerate cases (one run on a
side, no variance on either) are caught before it, so that they get a reason instead of a
NaN.  tests/unit/plugins/plugin_utils/nswapbench/test_stats.py checks it against a value
computed by hand.
"""

import dataclasses
import statistics
import warnings

from .libraries import ttest_ind

ALPHA = 0.05  # significance level of the marker; mmtests marks p < 0.05 the same way
# Below this factor "1.04x" needs two decimals: "1.0x" would hide which side won.
TWO_DECIMALS_BELOW = 1.1


@dataclasses.dataclass(frozen=True)
class Summary:
    n: int
    mean: float | None  # None: no timed runs
    stdev: float | None  # None: fewer than two runs (sample stdev, n - 1)


@dataclasses.dataclass(frozen=True)
class Welch:
    t: float | None
    df: float | None
    p: float | None  # two-sided; None when the test is undefined (see reason)
    reason: str | None  # why there is no p-value

    def significant(self, alpha=ALPHA):
        return self.p is not None and self.p < alpha


def summarize(values):
    """Summary of a cell's wall times."""
    values = list(values)
    if not values:
        return Summary(0, None, None)
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if len(values) > 1 else None
    return Summary(len(values), mean, stdev)


def time_ratio(time_s, reference_s):
    """time / reference time: above 1 the backend is slower than the reference (disk)."""
    if time_s is None or reference_s is None:
        return None
    if reference_s <= 0:
        return None  # a 0 s reference cannot be compared with
    return time_s / reference_s


def speed_label(ratio):
    """The paper's wording of a time ratio: 4.6 -> "4.6x slower", 0.625 -> "1.6x faster"."""
    if ratio is None:
        return None
    if ratio == 1:
        return "1.00x (same)"
    if ratio <= 0:
        return "no time"
    factor, word = (ratio, "slower") if ratio > 1 else (1 / ratio, "faster")
    digits = 2 if factor < TWO_DECIMALS_BELOW else 1
    return "%.*fx %s" % (digits, factor, word)


TOO_FEW_RUNS = "needs 2+ runs on each side"


def welch(a, b):
    """Welch's unequal-variances t-test of two samples, two-sided."""
    a, b = list(a), list(b)
    if len(a) < 2 or len(b) < 2:
        return Welch(None, None, None, TOO_FEW_RUNS)
    if statistics.variance(a) == 0 and statistics.variance(b) == 0:
        return Welch(None, None, None, "no variance on either side")
    with warnings.catch_warnings():
        # scipy's note on nearly identical samples: the variance checked above is not 0,
        # and the two-pass moments it warns about are exact enough for run times
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = ttest_ind(a, b, equal_var=False)
    return Welch(float(result.statistic), float(result.df), float(result.pvalue), None)
