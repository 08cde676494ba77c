"""Thompson-sampling allocation: traffic weights proportional to each arm's probability of
being the best on the primary metric, with a floor so that no arm starves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._types import Mean, Proportion

__all__ = ["thompson_weights"]


def thompson_weights(
    arms: Sequence[Proportion | Mean],
    *,
    min_weight: float = 0.05,
    draws: int = 10_000,
    inverse: bool = False,
    seed: int | None = None,
) -> list[float]:
    """One weight per arm, summing to 1, each at least ``min_weight``.

    Proportions draw from their Beta(1 + conversions, 1 + failures) posterior; means from the
    normal approximation of their mean. Until every mean arm has two units, weights are equal.
    ``inverse``: lower is better.
    """
    k = len(arms)
    if k < 2:
        raise ValueError("at least two arms are needed")
    if not 0 <= min_weight <= 1 / k:
        raise ValueError(f"min_weight must be in [0, 1/{k}]")
    if not 1 <= draws <= 1_000_000:
        raise ValueError("draws must be between 1 and 1,000,000")
    rng = np.random.default_rng(seed)
    samples = np.empty((draws, k))
    for j, arm in enumerate(arms):
        if isinstance(arm, Proportion):
            samples[:, j] = rng.beta(1 + arm.conversions, 1 + arm.n - arm.conversions, draws)
        elif isinstance(arm, Mean):
            if arm.n < 2:
                return [1 / k] * k
            samples[:, j] = rng.normal(arm.mean, np.sqrt(arm.variance / arm.n), draws)
        else:
            raise TypeError(f"arm {j} must be a Proportion or a Mean")
    best = samples.argmin(axis=1) if inverse else samples.argmax(axis=1)
    share = np.bincount(best, minlength=k) / draws
    weights = min_weight + (1 - k * min_weight) * share
    return [float(w) for w in weights / weights.sum()]
