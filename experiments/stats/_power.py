"""Planning: power, minimum detectable effect and sample size of a two-arm test.

Normal approximation of the two-sided Welch test at level ``alpha`` with equal arms of
``n_per_arm`` units; effects relative to the control mean (``relative=True``: 0.1 is +10 %) or
absolute. ``variance`` is the per-unit variance of the metric in control; for a conversion metric
pass ``binary=True`` and the treatment's variance follows from its rate, ``p (1 - p)``.
"""

from __future__ import annotations

import math

from scipy.optimize import brentq
from scipy.stats import norm

__all__ = ["minimum_detectable_effect", "power", "sample_size"]


def _check(mean: float, variance: float, alpha: float, binary: bool) -> None:
    if not math.isfinite(mean):
        raise ValueError("mean must be finite")
    if not (math.isfinite(variance) and variance > 0):
        raise ValueError("variance must be positive")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if binary and not 0 < mean < 1:
        raise ValueError("a conversion rate (binary=True) must be in (0, 1)")


def _absolute(mean: float, effect: float, relative: bool) -> float:
    if relative:
        if mean == 0:
            raise ValueError("a relative effect needs a non-zero control mean")
        return effect * abs(mean)
    return effect


def _treatment_variance(mean: float, variance: float, delta: float, binary: bool) -> float | None:
    if not binary:
        return variance
    p = mean + delta
    if not 0 < p < 1:
        return None  # no such conversion rate
    return p * (1 - p)


def power(
    *,
    mean: float,
    variance: float,
    effect: float,
    n_per_arm: int,
    relative: bool = True,
    alpha: float = 0.05,
    binary: bool = False,
) -> float:
    """Probability that the test detects ``effect`` (two-sided) with ``n_per_arm`` units per arm."""
    _check(mean, variance, alpha, binary)
    if n_per_arm < 2:
        raise ValueError("n_per_arm must be at least 2")
    delta = _absolute(mean, effect, relative)
    treatment_variance = _treatment_variance(mean, variance, delta, binary)
    if treatment_variance is None:
        raise ValueError("the effect moves the conversion rate outside (0, 1)")
    se = math.sqrt((variance + treatment_variance) / n_per_arm)
    z = float(norm.ppf(1 - alpha / 2))
    shift = abs(delta) / se
    return float(norm.cdf(shift - z) + norm.cdf(-shift - z))


def minimum_detectable_effect(
    *,
    mean: float,
    variance: float,
    n_per_arm: int,
    power: float = 0.8,
    relative: bool = True,
    alpha: float = 0.05,
    binary: bool = False,
) -> float | None:
    """Smallest positive effect detected with probability ``power``; ``None`` when no effect
    within the metric's range is (a conversion rate cannot exceed 1)."""
    if not alpha < power < 1:
        raise ValueError("power must be in (alpha, 1)")
    _check(mean, variance, alpha, binary)
    scale = abs(mean) if relative else 1.0
    # Search the absolute effect, then express it on the requested scale.
    upper = (1 - mean) * (1 - 1e-9) if binary else 1e6 * math.sqrt(variance)

    def gap(delta: float) -> float:
        return _power_abs(mean, variance, delta, n_per_arm, alpha, binary) - power

    if gap(upper) < 0:
        return None
    delta = brentq(gap, 1e-15, upper, xtol=1e-12 * max(1.0, abs(mean)))
    return delta / scale


def _power_abs(mean, variance, delta, n_per_arm, alpha, binary) -> float:
    treatment_variance = _treatment_variance(mean, variance, delta, binary)
    if treatment_variance is None:
        return 0.0
    se = math.sqrt((variance + treatment_variance) / n_per_arm)
    z = float(norm.ppf(1 - alpha / 2))
    shift = abs(delta) / se
    return float(norm.cdf(shift - z) + norm.cdf(-shift - z))


def sample_size(
    *,
    mean: float,
    variance: float,
    effect: float,
    power: float = 0.8,
    relative: bool = True,
    alpha: float = 0.05,
    binary: bool = False,
) -> int:
    """Units per arm needed to detect ``effect`` with probability ``power``."""
    if not alpha < power < 1:
        raise ValueError("power must be in (alpha, 1)")
    _check(mean, variance, alpha, binary)
    delta = _absolute(mean, effect, relative)
    if delta == 0:
        raise ValueError("effect must be non-zero")
    treatment_variance = _treatment_variance(mean, variance, delta, binary)
    if treatment_variance is None:
        raise ValueError("the effect moves the conversion rate outside (0, 1)")
    z = float(norm.ppf(1 - alpha / 2) + norm.ppf(power))
    n = max(2, math.ceil(z**2 * (variance + treatment_variance) / delta**2))
    # The closed form ignores the far tail; step to the exact smallest n.
    while n > 2 and _power_abs(mean, variance, delta, n - 1, alpha, binary) >= power:
        n -= 1
    while _power_abs(mean, variance, delta, n, alpha, binary) < power:
        n += 1
    return n
