"""CUPED, multiple-comparison adjustments, planning and Thompson sampling."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.stats import (
    Cuped,
    Mean,
    Proportion,
    bayesian,
    benjamini_hochberg,
    holm,
    minimum_detectable_effect,
    power,
    sample_size,
    sequential_ttest,
    thompson_weights,
    ttest,
)


def _arm(rng, n, lift):
    pre = rng.normal(50, 20, n)
    post = 0.9 * pre + rng.normal(5 + lift, 8, n)
    return (
        Mean(n=n, sum=float(post.sum()), sum_squares=float((post**2).sum())),
        Cuped(
            post=Mean(n=n, sum=float(post.sum()), sum_squares=float((post**2).sum())),
            pre=Mean(n=n, sum=float(pre.sum()), sum_squares=float((pre**2).sum())),
            sum_products=float((post * pre).sum()),
        ),
    )


def test_cuped__correlated_covariate__narrower_interval_same_centre():
    # Given a metric strongly correlated with its pre-exposure value, and a real lift of 1
    rng = np.random.default_rng(7)
    plain_c, cuped_c = _arm(rng, 4000, 0.0)
    plain_t, cuped_t = _arm(rng, 4000, 1.0)
    # When testing with and without the covariate (absolute effect)
    plain = ttest(plain_c, plain_t, relative=False)
    adjusted = ttest(cuped_c, cuped_t, relative=False)
    # Then CUPED's interval is much narrower and still covers the true lift
    assert (adjusted.ci_high - adjusted.ci_low) < 0.6 * (plain.ci_high - plain.ci_low)
    assert adjusted.ci_low < 1.0 < adjusted.ci_high
    assert adjusted.p_value < plain.p_value


def test_cuped__mixed_arms__value_error():
    _, cuped = _arm(np.random.default_rng(1), 10, 0)
    with pytest.raises(ValueError, match="CUPED"):
        ttest(cuped, Mean(n=10, sum=1, sum_squares=1))


def test_holm__textbook_example__adjusted_values():
    # Given four p-values, When Holm-adjusting
    # Then each is multiplied by its step-down factor and kept monotone (in input order)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg__textbook_example__q_values():
    # Given p-values, When BH-adjusting, Then q = min over larger ranks of p * m / rank
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([0.9, 0.8]) == pytest.approx([0.9, 0.9])


def test_adjustments__bh_never_stricter_than_holm__and_both_at_least_raw():
    rng = np.random.default_rng(3)
    raw = list(rng.uniform(0, 0.2, 12))
    for r, h, b in zip(raw, holm(raw), benjamini_hochberg(raw), strict=True):
        assert r <= b <= h <= 1


@pytest.mark.parametrize("bad", [[-0.1], [1.2], [float("nan")], ["x"]])
def test_adjustments__bad_p_values__value_error(bad):
    with pytest.raises(ValueError, match="p-values"):
        holm(bad)


def test_sample_size__10pct_baseline_10pct_lift__classic_figure():
    # Given a 10 % conversion rate and a +10 % relative lift to detect (alpha 0.05, power 0.8)
    n = sample_size(mean=0.1, variance=0.09, effect=0.1, binary=True)
    # Then about 14,750 visitors per arm (the unpooled normal-approximation figure)
    assert 14_700 <= n <= 14_800
    # And power at that n is at least 0.8, one fewer is below
    assert power(mean=0.1, variance=0.09, effect=0.1, n_per_arm=n, binary=True) >= 0.8
    assert power(mean=0.1, variance=0.09, effect=0.1, n_per_arm=n - 1, binary=True) < 0.8


def test_mde__inverse_of_sample_size():
    # Given n per arm, When asking the minimum detectable effect at 80 % power
    mde = minimum_detectable_effect(mean=20.0, variance=100.0, n_per_arm=5000)
    # Then detecting that effect needs (about) that n
    assert sample_size(mean=20.0, variance=100.0, effect=mde) == pytest.approx(5000, abs=2)


def test_mde__unreachable_for_tiny_sample__none():
    assert minimum_detectable_effect(mean=0.9, variance=0.09, n_per_arm=2, binary=True) is None


def test_power__simulated_tests__match_prediction():
    # Given 400 simulated A/B tests with a real +20 % lift on a 10 % rate and the planned n
    rng = np.random.default_rng(11)
    n = sample_size(mean=0.1, variance=0.09, effect=0.2, power=0.8, binary=True)
    hits = 0
    for _ in range(400):
        c = int(rng.binomial(n, 0.10))
        t = int(rng.binomial(n, 0.12))
        est = ttest(Proportion(n=n, conversions=c), Proportion(n=n, conversions=t))
        hits += est.p_value < 0.05
    # Then about 80 % of them detect it (binomial sd ~2 pp)
    assert 0.72 <= hits / 400 <= 0.88


def test_thompson__clear_winner__gets_most_traffic_floor_respected():
    arms = [
        Proportion(n=5000, conversions=250),
        Proportion(n=5000, conversions=400),
        Proportion(n=5000, conversions=240),
    ]
    weights = thompson_weights(arms, min_weight=0.05, seed=1)
    assert sum(weights) == pytest.approx(1)
    assert weights[1] > 0.85
    assert min(weights) >= 0.05 - 1e-12


def test_thompson__no_data__equal_weights():
    weights = thompson_weights([Mean(n=0, sum=0, sum_squares=0)] * 3, seed=1)
    assert weights == pytest.approx([1 / 3] * 3)


def _simulate(rates, *, bandit: bool, rounds=30, per_round=1000, seed=5):
    rng = np.random.default_rng(seed)
    k = len(rates)
    n = np.zeros(k, dtype=int)
    c = np.zeros(k, dtype=int)
    weights = [1 / k] * k
    regret = 0.0
    for r in range(rounds):
        assigned = rng.multinomial(per_round, weights)
        conversions = rng.binomial(assigned, rates)
        n += assigned
        c += conversions
        regret += float(np.dot(assigned, max(rates) - np.asarray(rates)))
        if bandit:
            weights = thompson_weights(
                [Proportion(n=int(a), conversions=int(b)) for a, b in zip(n, c, strict=True)],
                min_weight=0.02,
                seed=seed * 1000 + r,
            )
    return regret


def test_thompson__simulation_with_known_rates__less_regret_than_fixed_split():
    # Given three arms with known conversion rates and 30 rounds of 1,000 visitors
    rates = [0.05, 0.06, 0.08]
    # When allocating by Thompson sampling (weights updated each round) or by a fixed split
    bandit = _simulate(rates, bandit=True)
    fixed = _simulate(rates, bandit=False)
    # Then the bandit loses well under half the conversions the fixed split loses
    assert bandit < 0.5 * fixed


@pytest.mark.parametrize("test", [ttest, sequential_ttest, bayesian])
def test_relative_effect__control_mean_near_zero__says_too_extreme_not_endless_interval(test):
    # Given a control whose mean is a denormal-sized positive number (its variance over the mean
    # to the fourth power overflows to inf without raising)
    control = Mean(n=2, sum=6.6e-77, sum_squares=9.0)
    treatment = Mean(n=2, sum=14.0, sum_squares=99.0)

    # When the relative effect is estimated
    estimate = test(control, treatment, relative=True)

    # Then the answer says so with finite numbers, rather than an interval from -inf to inf
    assert estimate.error == "The inputs are too extreme for a finite result."
    assert all(np.isfinite([estimate.expected, estimate.ci_low, estimate.ci_high]))
