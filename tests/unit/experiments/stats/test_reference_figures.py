"""The issue's reference figures (GrowthBook gbstats 0.8.0), to four decimals, and the API shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from experiments.stats import (
    Estimate,
    Mean,
    Proportion,
    bayesian,
    sequential_ttest,
    srm_p_value,
    ttest,
)

CONTROL = Proportion(n=1000, conversions=100)
TREATMENT = Proportion(n=1000, conversions=125)


def test_ttest__relative_reference_case__matches_four_decimals():
    # Given 100/1000 vs 125/1000
    # When testing the relative effect
    est = ttest(CONTROL, TREATMENT, relative=True, alpha=0.05)
    # Then lift, interval and p-value are the reference engine's
    assert isinstance(est, Estimate)
    assert round(est.expected, 4) == 0.25
    assert round(est.ci_low, 4) == -0.0601
    assert round(est.ci_high, 4) == 0.5601
    assert round(est.p_value, 4) == 0.1140


def test_ttest__absolute_reference_case__matches_five_decimals():
    # Given the same arms, When testing the absolute effect
    est = ttest(CONTROL, TREATMENT, relative=False)
    # Then the difference, its interval and the p-value match
    assert round(est.expected, 5) == 0.025
    assert round(est.ci_low, 5) == -0.00269
    assert round(est.ci_high, 5) == 0.05269
    assert round(est.p_value, 4) == 0.0768


def test_bayesian__relative_reference_case__chance_to_win():
    # Given the same arms, When computing the Bayesian relative result
    est = bayesian(CONTROL, TREATMENT, relative=True)
    # Then the chance to beat control is the reference figure, with a risk per choice
    assert round(est.chance_to_win, 4) == 0.9431
    assert est.p_value is None
    assert est.risk is not None
    assert est.risk[1] < est.risk[0]  # choosing the likely winner risks less


def test_srm__1000_vs_1100_at_half__p_0_0291():
    # Given 1000 and 1100 users at 50/50, When testing the split
    # Then the chi-squared p-value is 0.0291
    assert round(srm_p_value([1000, 1100], [0.5, 0.5]), 4) == 0.0291


def test_sequential__reference_case__wider_than_fixed_horizon():
    # Given the same arms, When using the sequential test at tuning 5000
    seq = sequential_ttest(CONTROL, TREATMENT, tuning=5000)
    fixed = ttest(CONTROL, TREATMENT)
    # Then the always-valid interval is wider and the p-value larger
    assert seq.ci_low < fixed.ci_low
    assert seq.ci_high > fixed.ci_high
    assert seq.p_value > fixed.p_value
    assert round(seq.ci_low, 4) == -0.2439
    assert round(seq.p_value, 4) == 0.7897


def test_ttest__zero_control_mean__uninformative_with_reason():
    # Given a control that never converted, When testing
    est = ttest(Proportion(n=100, conversions=0), Proportion(n=100, conversions=5))
    # Then the result says so rather than dividing by zero
    assert est.error
    assert est.p_value == 1.0
    assert est.expected == 0.0


@pytest.mark.parametrize(
    "build",
    [
        lambda: Proportion(n=-1, conversions=0),
        lambda: Proportion(n=10, conversions=11),
        lambda: Proportion(n=10.5, conversions=1),
        lambda: Mean(n=10, sum=float("nan"), sum_squares=1),
        lambda: Mean(n=10, sum=1, sum_squares=-1),
    ],
)
def test_statistics__absurd_inputs__value_error(build):
    # Given absurd sufficient statistics, When building them, Then ValueError (never a silent NaN)
    with pytest.raises(ValueError, match="must"):
        build()


@pytest.mark.parametrize(
    ("users", "weights"),
    [([1, 2], [1]), ([1], [1]), ([-1, 2], [1, 1]), ([1, 2], [0, 0]), ([1, 2], [1, float("inf")])],
)
def test_srm__absurd_inputs__value_error(users, weights):
    with pytest.raises(ValueError, match=r"must|needed"):
        srm_p_value(users, weights)


def test_ttest__alpha_out_of_range__value_error():
    with pytest.raises(ValueError, match="alpha"):
        ttest(CONTROL, TREATMENT, alpha=1.5)


def test_import__experiments_stats__imports_neither_django_nor_gbstats():
    # Given a fresh interpreter at the repository root
    code = (
        "import experiments.stats, sys; "
        "bad = [m for m in ('django', 'celery', 'gbstats') if m in sys.modules]; "
        "assert not bad, bad"
    )
    # When importing the statistics package
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[4],
        capture_output=True,
        text=True,
    )
    # Then it pulled in none of them
    assert result.returncode == 0, result.stderr


def test_statistics__numpy_and_float_counts__accepted_like_ints():
    # Given counts as numpy integers and integral floats (as data frames hand them over)
    import numpy as np

    a = Proportion(n=np.int64(1000), conversions=np.int64(100))
    b = Proportion(n=1000.0, conversions=np.float32(125))
    # When testing, Then the reference figures hold and n is a plain int
    assert round(ttest(a, b).p_value, 4) == 0.1140
    assert type(a.n) is int
    assert round(srm_p_value(np.array([1000, 1100]), np.array([0.5, 0.5])), 4) == 0.0291
