"""The paper's faster-network projection (Table 2), as a fit of run time against link rate.

Model: T(rate) = other_s + link_mbit / rate.  ``other_s`` is the time that does not depend
on the link (CPU, latency, the disk of W3/W4's file writer), ``link_mbit / rate`` the time
spent moving data at ``rate`` Mbit/s.  This is Amdahl's law as the paper uses it: between a
slow rate r1 and a faster rate r2 = s * r1 the measured speedup is

    S = T(r1) / T(r2) = 1 / (1 - f + f / s),   f = (link_mbit / r1) / T(r1),

the paper's FractionBandwidth f, so f = (1 - 1/S) / (1 - 1/s) (``paper_fraction``).  Two
rates fix both parameters exactly; with more, ``fit`` takes the least-squares line of T
against 1/rate (numpy.polyfit of degree 1), which passes through both points when there
are two.
"""

import dataclasses

from .libraries import numpy

GBIT = 1000.0  # Mbit/s
PROJECTION_RATES_MBIT = (1 * GBIT, 10 * GBIT, 25 * GBIT)


class FitError(ValueError):
    """The measurements do not support a projection; the message says why."""


@dataclasses.dataclass(frozen=True)
class Fit:
    other_s: float  # time that no link rate removes
    link_mbit: float  # "megabits" whose transfer explains the rest: link time = link_mbit / rate
    rates_mbit: tuple  # the rates fitted, slowest first
    times_s: tuple  # the mean times at those rates

    @property
    def slowest(self):
        return self.rates_mbit[0], self.times_s[0]

    @property
    def fraction(self):
        """The paper's FractionBandwidth: the link's share of the time at the slowest rate."""
        rate, time_s = self.slowest
        return (self.link_mbit / rate) / time_s

    def time_at(self, rate_mbit):
        if rate_mbit <= 0:
            raise ValueError("rate %r Mbit/s: a rate must be above 0" % rate_mbit)
        return self.other_s + self.link_mbit / rate_mbit

    def speedup_at(self, rate_mbit):
        """The paper's TotalSpeedup: time at the slowest fitted rate / projected time."""
        return self.slowest[1] / self.time_at(rate_mbit)


def paper_fraction(speedup, bandwidth_speedup):
    """The paper's FractionBandwidth from a measured TotalSpeedup at a SpeedupBandwidth."""
    if bandwidth_speedup == 1:
        raise ValueError("the two rates are equal: no fraction can be fitted")
    return (1 - 1 / speedup) / (1 - 1 / bandwidth_speedup)


def amdahl_speedup(fraction, bandwidth_speedup):
    """TotalSpeedup = 1 / (1 - f + f / s): the paper's equation."""
    return 1 / (1 - fraction + fraction / bandwidth_speedup)


def fit(points):
    """Fit the model to [(rate_mbit, mean_time_s), ...] at two or more distinct rates."""
    points = sorted(points)
    rates = [rate for rate, _time_s in points]
    if len(set(rates)) < 2:
        raise FitError("needs runs at two different link rates, has %d" % len(set(rates)))
    if len(rates) != len(set(rates)):
        raise FitError("one mean time per rate, got the rates %s" % rates)
    ys = [time_s for _rate, time_s in points]
    slope, intercept = numpy.polyfit([1 / rate for rate in rates], ys, 1)
    link_mbit, other_s = float(slope), float(intercept)
    if link_mbit <= 0:
        raise FitError(
            "the faster link was not faster (%s): the link is not what limits this run, or "
            "the noise is larger than its effect" % _points_text(points)
        )
    if other_s < 0:
        raise FitError(
            "the time fell faster than 1/rate (%s): the model would project negative "
            "times; the slow rate probably added more than transfer time (e.g. timeouts)"
            % _points_text(points)
        )
    return Fit(other_s, link_mbit, tuple(rates), tuple(ys))


def _points_text(points):
    return ", ".join("%.4g s at %g Mbit/s" % (time_s, rate) for rate, time_s in points)


@dataclasses.dataclass(frozen=True)
class Validation:
    rate_mbit: float
    projected_s: float
    measured_s: float

    @property
    def error_pct(self):
        """(projected - measured) / measured, in percent: above 0 the model was pessimistic."""
        return (self.projected_s - self.measured_s) / self.measured_s * 100


def validate(model, rate_mbit, measured_s):
    """Compare the projection at a measured link's rate with the run measured there."""
    return Validation(rate_mbit, model.time_at(rate_mbit), measured_s)
