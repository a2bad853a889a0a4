"""plugins/plugin_utils/nswapbench/stats.py on fixed, hand-checkable numbers."""

import math
import statistics

import pytest
from ansible_collections.nswap.cluster.plugins.plugin_utils.nswapbench import stats
from scipy.stats import t as t_distribution
from scipy.stats import ttest_ind

DISK = [10.0, 12.0, 14.0]  # mean 12, sample stdev 2
NSWAP = [20.0, 22.0, 24.0]  # mean 22, sample stdev 2


def test_summary_mean_and_sample_stdev():
    assert stats.summarize(DISK) == stats.Summary(3, 12.0, 2.0)


def test_summary_of_one_run_has_no_stdev_and_of_none_no_mean():
    assert stats.summarize([7.5]) == stats.Summary(1, 7.5, None)
    assert stats.summarize([]) == stats.Summary(0, None, None)


def test_summary_of_identical_runs_has_zero_stdev():
    assert stats.summarize([30.0, 30.0, 30.0]) == stats.Summary(3, 30.0, 0.0)


@pytest.mark.parametrize(
    "time_s, reference_s, ratio, label",
    [
        (22.0, 12.0, 22 / 12, "1.8x slower"),
        (450.9, 98.0, 450.9 / 98.0, "4.6x slower"),  # the paper's Table 1, PII, W1 x1
        (617.0, 996.7, 617.0 / 996.7, "1.6x faster"),  # PII, W2 x4
        (630.6, 652.9, 630.6 / 652.9, "1.04x faster"),  # PII, W1 x4: two decimals near 1
        (2111.0, 1971.2, 2111.0 / 1971.2, "1.07x slower"),  # PII, W4 x1
        (5.0, 5.0, 1.0, "1.00x (same)"),
    ],
)
def test_time_ratio_and_the_papers_wording(time_s, reference_s, ratio, label):
    assert stats.time_ratio(time_s, reference_s) == pytest.approx(ratio)
    assert stats.speed_label(stats.time_ratio(time_s, reference_s)) == label


def test_ratio_without_a_reference_is_none():
    assert stats.time_ratio(10.0, None) is None
    assert stats.time_ratio(None, 10.0) is None
    assert stats.time_ratio(10.0, 0.0) is None
    assert stats.speed_label(None) is None


def test_welch_against_a_hand_computed_value():
    # t = (22 - 12) / sqrt(4/3 + 4/3) = 6.1237; df = (8/3)^2 / (2 * (4/3)^2 / 2) = 4.
    # Student's t with 4 degrees of freedom has a closed-form CDF:
    #   F(t) = 1/2 + (3/8) u (1 - t^2 / (12 (1 + t^2/4))),  u = t / sqrt(1 + t^2/4)
    t = 10 / math.sqrt(8 / 3)
    u = t / math.sqrt(1 + t * t / 4)
    p_by_hand = 2 * (1 - (0.5 + 3 / 8 * u * (1 - t * t / (12 * (1 + t * t / 4)))))
    assert p_by_hand == pytest.approx(0.0036022326, rel=1e-8)
    result = stats.welch(NSWAP, DISK)
    assert result.t == pytest.approx(6.1237243570)
    assert result.df == pytest.approx(4.0)
    assert result.p == pytest.approx(p_by_hand, rel=1e-9)
    assert result.significant()
    assert not result.significant(alpha=0.001)


@pytest.mark.parametrize(
    "a, b",
    [
        ([1.0, 2.0, 4.0, 8.0], [3.0, 3.5, 2.9]),
        ([100.0, 101.5, 99.0, 100.2, 98.7], [97.0, 103.0]),
        # zero variance on one side only (scipy warns about its own moment arithmetic)
        pytest.param(
            [5.0, 5.0, 5.0],
            [4.0, 7.0],
            marks=pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning"),
        ),
    ],
)
def test_welch_is_the_unequal_variance_test(a, b):
    """The Welch-Satterthwaite t and df by their textbook formulas: a pooled-variance
    (Student) test or swapped samples would give other numbers."""
    se2_a = statistics.variance(a) / len(a)
    se2_b = statistics.variance(b) / len(b)
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(se2_a + se2_b)
    df = (se2_a + se2_b) ** 2 / (se2_a**2 / (len(a) - 1) + se2_b**2 / (len(b) - 1))
    result = stats.welch(a, b)
    assert result.t == pytest.approx(t)
    assert result.df == pytest.approx(df)
    assert result.p == pytest.approx(2 * t_distribution.sf(abs(t), df))
    assert result.p != pytest.approx(float(ttest_ind(a, b, equal_var=True).pvalue))


def test_welch_not_significant_for_overlapping_samples():
    result = stats.welch([10.0, 12.0, 14.0], [11.0, 13.0, 15.0])
    assert result.p == pytest.approx(float(ttest_ind([10, 12, 14], [11, 13, 15]).pvalue))
    assert not result.significant()


def test_welch_needs_two_runs_on_each_side():
    result = stats.welch([20.0], DISK)
    assert (result.t, result.p) == (None, None)
    assert result.reason == "needs 2+ runs on each side"
    assert not result.significant()


def test_welch_without_any_variance_is_undefined_not_nan():
    result = stats.welch([15.0, 15.0, 15.0], [30.0, 30.0, 30.0])
    assert (result.t, result.df, result.p) == (None, None, None)
    assert result.reason == "no variance on either side"
