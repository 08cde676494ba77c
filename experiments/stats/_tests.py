"""Frequentist (fixed-horizon and sequential) and Bayesian comparisons of two arms.

Formulas follow GrowthBook's gbstats 0.8.0 (``TwoSidedTTest``, ``SequentialTwoSidedTTest``,
``EffectBayesianABTest``), so that Mosaic's numbers agree with the reference engine; the
differential tests in tests/unit/experiments/stats compare both on random inputs.

- Effects are relative (``(mean_t - mean_c) / mean_c``, variance by the delta method) or absolute
  (``mean_t - mean_c``).
- Welch's unequal-variance t-test with the Welch-Satterthwaite degrees of freedom.
- Sequential: the asymptotic confidence sequence of Waudby-Smith et al. 2023 (eq. 9, the
  p-value of eq. 155), tuned by the expected sample size ``tuning``; valid at any look.
- Bayesian: a Gaussian approximation of the effect with a flat (or Gaussian) prior: chance to
  beat control, a credible interval and the risk (expected loss) of each choice.

Like the reference engine, a comparison that cannot be computed (a zero control mean, no units,
no variance) returns an uninformative estimate with ``error`` set rather than raising.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from scipy.stats import norm
from scipy.stats import t as student_t

from ._types import Cuped, Estimate, Mean, Proportion, Ratio, Statistic

__all__ = ["GaussianPrior", "bayesian", "sequential_ttest", "ttest"]

BASELINE_ZERO = "The control's mean is zero: no relative effect can be computed."
ZERO_VARIANCE = "An arm has zero (or negative) variance."
NO_UNITS = "An arm has no units."
NUMERIC = "The inputs are too extreme for a finite result."


@dataclass(frozen=True, slots=True)
class GaussianPrior:
    """A proper Gaussian prior on the effect; ``relative`` says on which scale it is given."""

    mean: float = 0.0
    variance: float = 1.0
    relative: bool = True

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean):
            raise ValueError("prior mean must be finite")
        if not (math.isfinite(self.variance) and self.variance > 0):
            raise ValueError("prior variance must be positive and finite")


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _check_stat(name: str, stat: object) -> None:
    if not isinstance(stat, Proportion | Mean | Ratio | Cuped):
        raise TypeError(f"{name} must be a Proportion, Mean, Ratio or Cuped, got {stat!r}")


def _pooled(a, b, n: int):
    if isinstance(a, Proportion) and isinstance(b, Proportion):
        return Proportion(n=n, conversions=a.conversions + b.conversions)
    if isinstance(a, Mean) and isinstance(b, Mean):
        return Mean(n=n, sum=a.sum + b.sum, sum_squares=a.sum_squares + b.sum_squares)
    raise ValueError("control and treatment must use the same kind of statistic")


def cuped_theta(control: Cuped, treatment: Cuped) -> float:
    """The CUPED coefficient from both arms pooled: cov(post, pre) / var(pre)."""
    n = control.n + treatment.n
    post = _pooled(control.post, treatment.post, n)
    pre = _pooled(control.pre, treatment.pre, n)
    if pre.variance == 0 or post.variance == 0:
        return 0.0
    joint = Cuped(post=post, pre=pre, sum_products=control.sum_products + treatment.sum_products)
    return joint.covariance / pre.variance


def _prepare(control: Statistic, treatment: Statistic) -> tuple[Statistic, Statistic]:
    _check_stat("control", control)
    _check_stat("treatment", treatment)
    if isinstance(control, Cuped) != isinstance(treatment, Cuped):
        raise ValueError("either both arms or neither carry a CUPED covariate")
    if isinstance(control, Cuped) and isinstance(treatment, Cuped):
        theta = cuped_theta(control, treatment)
        if theta == 0:
            # No variance to adjust with: the plain post-exposure comparison.
            return control.post, treatment.post
        return control.with_theta(theta), treatment.with_theta(theta)
    return control, treatment


def _diff(a: Statistic, b: Statistic, relative: bool) -> float:
    if relative:
        return (b.mean - a.mean) / a.unadjusted_mean
    return b.mean - a.mean


def _variance(a: Statistic, b: Statistic, relative: bool) -> float:
    va, ma, na = a.variance, a.unadjusted_mean, a.n
    vb, mb, nb = b.variance, b.unadjusted_mean, b.n
    if relative:
        return vb / (ma**2 * nb) + va * mb**2 / (ma**4 * na)
    return vb / nb + va / na


def _finite(x: float) -> float:
    """``x``, or OverflowError: float products overflow to inf (or inf - inf to nan) silently,
    and an infinite variance would answer a result with endless intervals instead of saying the
    inputs are too extreme (a control mean near zero under a relative effect)."""
    if not math.isfinite(x):
        raise OverflowError(x)
    return x


def _welch_dof(a: Statistic, b: Statistic) -> float:
    va, na, vb, nb = a.variance, a.n, b.variance, b.n
    return (vb / nb + va / na) ** 2 / (vb**2 / (nb**2 * (nb - 1)) + va**2 / (na**2 * (na - 1)))


def _uninformative(relative: bool, error: str, *, bayesian: bool = False) -> Estimate:
    if bayesian:
        return Estimate(
            0.0, 0.0, 0.0, 0.0, relative, chance_to_win=0.5, risk=(0.0, 0.0), error=error
        )
    return Estimate(0.0, 0.0, 0.0, 0.0, relative, p_value=1.0, error=error)


def _frequentist_error(a: Statistic, b: Statistic) -> str | None:
    # As in the reference engine, a zero control mean stops absolute comparisons too.
    if a.mean == 0 or a.unadjusted_mean == 0:
        return BASELINE_ZERO
    if a.variance <= 0 or b.variance <= 0:
        return ZERO_VARIANCE
    return None


def ttest(
    control: Statistic, treatment: Statistic, *, relative: bool = True, alpha: float = 0.05
) -> Estimate:
    """Two-sided Welch t-test of treatment against control; sets ``p_value``."""
    _check_alpha(alpha)
    a, b = _prepare(control, treatment)
    error = _frequentist_error(a, b)
    if error:
        return _uninformative(relative, error)
    try:
        point = _diff(a, b, relative)
        se = math.sqrt(_finite(_variance(a, b, relative)))
        dof = _finite(_welch_dof(a, b))
        _finite(point)
    except (ZeroDivisionError, OverflowError):
        return _uninformative(relative, NUMERIC)
    p_value = float(2 * student_t.sf(abs(point / se), dof))
    width = float(student_t.ppf(1 - alpha / 2, dof)) * se
    return Estimate(point, point - width, point + width, se, relative, p_value=p_value)


def sequential_ttest(
    control: Statistic,
    treatment: Statistic,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    tuning: float = 5000,
) -> Estimate:
    """Always-valid two-sided test (asymptotic confidence sequence); safe to read every day.

    ``tuning`` is the total sample size at which the interval is tightest (the reference engine's
    ``sequential_tuning_parameter``).
    """
    _check_alpha(alpha)
    if isinstance(tuning, bool) or not isinstance(tuning, numbers.Real) or not tuning > 0:
        raise ValueError(f"tuning must be a positive number, got {tuning!r}")
    a, b = _prepare(control, treatment)
    error = _frequentist_error(a, b)
    if error:
        return _uninformative(relative, error)
    try:
        point = _finite(_diff(a, b, relative))
        variance = _finite(_variance(a, b, relative))
    except (ZeroDivisionError, OverflowError):
        return _uninformative(relative, NUMERIC)
    total = a.n + b.n
    # eq. 161: rho from alpha and the tuning parameter
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    nr2p1 = total * rho2 + 1
    # eq. 9: the confidence-sequence half width
    width = math.sqrt(variance * total) * math.sqrt(
        2 * nr2p1 * math.log(math.sqrt(nr2p1) / alpha) / (total**2 * rho2)
    )
    # eq. 155: the always-valid p-value is 1 / e-value, capped at 1
    st2 = point**2 * total / variance
    log_evalue = rho2 * st2 / (2 * nr2p1) - 0.5 * math.log(nr2p1)
    p_value = 1.0 if log_evalue <= 0 else math.exp(-log_evalue)
    return Estimate(
        point, point - width, point + width, math.sqrt(variance), relative, p_value=p_value
    )


def _risk(mu: float, sigma: float) -> tuple[float, float]:
    """Expected loss of choosing control and of choosing treatment for an effect ~ N(mu, sigma)."""
    z = mu / sigma
    density = sigma * float(norm.pdf(z))
    risk_control = mu * float(norm.cdf(z)) + density  # E[max(effect, 0)]
    risk_treatment = density - mu * float(norm.cdf(-z))  # E[max(-effect, 0)]
    return max(risk_control, 0.0), max(risk_treatment, 0.0)


def bayesian(
    control: Statistic,
    treatment: Statistic,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    inverse: bool = False,
    prior: GaussianPrior | None = None,
) -> Estimate:
    """Bayesian comparison (Gaussian approximation of the effect, flat prior unless ``prior``).

    Sets ``chance_to_win`` (probability that treatment beats control; for ``inverse`` metrics,
    where lower is better, that it is lower) and ``risk``.
    """
    _check_alpha(alpha)
    a, b = _prepare(control, treatment)
    if relative and (a.mean == 0 or a.unadjusted_mean == 0):
        return _uninformative(relative, BASELINE_ZERO, bayesian=True)
    if a.n == 0 or b.n == 0:
        return _uninformative(relative, NO_UNITS, bayesian=True)
    if a.variance <= 0 or b.variance <= 0:
        return _uninformative(relative, ZERO_VARIANCE, bayesian=True)

    try:
        data_variance = _finite(_variance(a, b, relative))
        data_mean = _finite(_diff(a, b, relative))
    except (ZeroDivisionError, OverflowError):
        return _uninformative(relative, NUMERIC, bayesian=True)
    if prior is None:
        mu, sigma = data_mean, math.sqrt(data_variance)
    else:
        base = a.unadjusted_mean
        prior_mean, prior_variance = prior.mean, prior.variance
        if relative and not prior.relative:
            prior_mean, prior_variance = prior_mean / abs(base), prior_variance / base**2
        elif not relative and prior.relative:
            prior_mean, prior_variance = prior_mean * abs(base), prior_variance * base**2
        precision = 1 / data_variance + 1 / prior_variance
        mu = (data_mean / data_variance + prior_mean / prior_variance) / precision
        sigma = math.sqrt(1 / precision)

    wins = float(norm.sf(0, mu, sigma))
    chance = 1 - wins if inverse else wins
    low, high = (float(x) for x in norm.ppf([alpha / 2, 1 - alpha / 2], mu, sigma))
    risk = _risk(mu, sigma)
    if inverse:
        risk = (risk[1], risk[0])
    return Estimate(mu, low, high, sigma, relative, chance_to_win=chance, risk=risk)
