"""Sufficient statistics of one arm for one metric, and the result of comparing two arms.

Frozen dataclasses so that they can be built from SQL aggregates, cached and compared. The
variance conventions are those of GrowthBook's gbstats 0.8.0 (the reference engine): a proportion
uses the population variance ``p (1 - p)``, a mean the sample variance with ``n - 1``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

__all__ = ["Cuped", "Estimate", "Mean", "Proportion", "Ratio", "Statistic"]


def _check_n(n: object) -> int:
    """A count of units: any integral number (numpy integers and 10.0 included)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Real):
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(n, numbers.Integral) and not (math.isfinite(n) and float(n).is_integer()):
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return int(n)


def _check_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Proportion:
    """A binary metric: ``conversions`` of ``n`` units converted."""

    n: int
    conversions: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _check_n(self.n))
        c = _check_finite("conversions", self.conversions)
        if c < 0 or c > self.n:
            raise ValueError(f"conversions must be between 0 and n={self.n}, got {c!r}")
        object.__setattr__(self, "conversions", c)

    @property
    def sum(self) -> float:
        return float(self.conversions)

    @property
    def sum_squares(self) -> float:
        return float(self.conversions)  # x**2 == x for 0/1 values

    @property
    def mean(self) -> float:
        return self.conversions / self.n if self.n else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def variance(self) -> float:
        m = self.mean
        return m * (1 - m)


@dataclass(frozen=True, slots=True)
class Mean:
    """A per-unit numeric metric (revenue, event count): sum and sum of squares over ``n`` units."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _check_n(self.n))
        object.__setattr__(self, "sum", _check_finite("sum", self.sum))
        if _check_finite("sum_squares", self.sum_squares) < 0:
            raise ValueError(f"sum_squares must be non-negative, got {self.sum_squares!r}")
        object.__setattr__(self, "sum_squares", float(self.sum_squares))

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        return (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)


@dataclass(frozen=True, slots=True)
class Ratio:
    """A ratio of two per-unit sums (revenue per order): numerator and denominator over the
    same ``n`` units, with the sum of their per-unit products (for the covariance)."""

    n: int
    numerator: Mean | Proportion
    denominator: Mean | Proportion
    sum_products: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _check_n(self.n))
        object.__setattr__(self, "sum_products", _check_finite("sum_products", self.sum_products))

    @property
    def mean(self) -> float:
        d = self.denominator.sum
        return self.numerator.sum / d if d else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def covariance(self) -> float:
        if self.n <= 1:
            return 0.0
        return (self.sum_products - self.numerator.sum * self.denominator.sum / self.n) / (
            self.n - 1
        )

    @property
    def variance(self) -> float:
        dm = self.denominator.mean
        if dm == 0 or self.n <= 1:
            return 0.0
        nm = self.numerator.mean
        return (
            self.numerator.variance / dm**2
            - 2 * self.covariance * nm / dm**3
            + nm**2 * self.denominator.variance / dm**4
        )


@dataclass(frozen=True, slots=True)
class Cuped:
    """A metric with its pre-exposure covariate (CUPED / regression adjustment).

    ``post`` is the metric after first exposure, ``pre`` the same metric in a window before it,
    ``sum_products`` the sum over units of post * pre. ``theta`` is set by the tests from both
    arms pooled (as the reference engine does); leave it at 0 when building one.
    """

    post: Mean | Proportion
    pre: Mean | Proportion
    sum_products: float
    theta: float = 0.0

    def __post_init__(self) -> None:
        if self.post.n != self.pre.n:
            raise ValueError("post and pre must count the same units (n)")
        if type(self.post) is not type(self.pre):
            raise ValueError("post and pre must be the same kind of statistic")
        _check_finite("sum_products", self.sum_products)
        _check_finite("theta", self.theta)

    @property
    def n(self) -> int:
        return self.post.n

    @property
    def mean(self) -> float:
        return self.post.mean - self.theta * self.pre.mean

    @property
    def unadjusted_mean(self) -> float:
        return self.post.mean

    @property
    def covariance(self) -> float:
        if self.n <= 1:
            return 0.0
        return (self.sum_products - self.post.sum * self.pre.sum / self.n) / (self.n - 1)

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        return (
            self.post.variance
            + self.theta**2 * self.pre.variance
            - 2 * self.theta * self.covariance
        )

    def with_theta(self, theta: float) -> Cuped:
        return replace(self, theta=theta)


Statistic = Proportion | Mean | Ratio | Cuped


@dataclass(frozen=True, slots=True)
class Estimate:
    """The effect of a treatment against control.

    ``expected`` is the point estimate (relative: a lift of 0.25 is +25 %; absolute: the
    difference of means), ``ci_low``/``ci_high`` the confidence (frequentist) or credible
    (Bayesian) interval, ``stddev`` the standard error of the effect. Frequentist tests set
    ``p_value``; Bayesian ones set ``chance_to_win`` and ``risk`` = (expected loss of choosing
    control, expected loss of choosing treatment), in the effect's units. ``error`` says why an
    uninformative result (0, [0, 0], p 1 / chance 0.5) was returned, e.g. a zero baseline.
    """

    expected: float
    ci_low: float
    ci_high: float
    stddev: float
    relative: bool
    p_value: float | None = None
    chance_to_win: float | None = None
    risk: tuple[float, float] | None = None
    error: str | None = None

    @property
    def ci(self) -> tuple[float, float]:
        return (self.ci_low, self.ci_high)

    def as_dict(self) -> dict:
        return {
            "expected": self.expected,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "stddev": self.stddev,
            "relative": self.relative,
            "p_value": self.p_value,
            "chance_to_win": self.chance_to_win,
            "risk": list(self.risk) if self.risk is not None else None,
            "error": self.error,
        }
