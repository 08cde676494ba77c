"""Sample-ratio mismatch: is the observed split of units what the configured weights promise?"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from scipy.stats import chi2

__all__ = ["srm_p_value"]


def srm_p_value(users: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-squared goodness-of-fit p-value of ``users`` per arm against ``weights``.

    Weights need not sum to 1; arms with a non-positive weight are left out of the statistic
    (as in the reference engine) but still count in the degrees of freedom. No units: 1.0.
    A small p-value (the results page warns below 0.001) means assignment or logging is broken
    and the experiment's results cannot be trusted.
    """
    users = list(users)
    weights = list(weights)
    if len(users) != len(weights):
        raise ValueError("users and weights must have the same length")
    if len(users) < 2:
        raise ValueError("at least two arms are needed")
    for u in users:
        if isinstance(u, bool) or not isinstance(u, numbers.Real) or not math.isfinite(u) or u < 0:
            raise ValueError(f"users must be non-negative counts, got {u!r}")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
            raise ValueError(f"weights must be finite numbers, got {w!r}")
    total = sum(users)
    if not total:
        return 1.0
    total_weight = sum(w for w in weights if w > 0)
    if total_weight <= 0:
        raise ValueError("at least one weight must be positive")
    x = 0.0
    for observed, w in zip(users, weights, strict=True):
        if w <= 0:
            continue
        expected = w / total_weight * total
        x += (observed - expected) ** 2 / expected
    return float(chi2.sf(x, len(users) - 1))
