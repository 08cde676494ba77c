"""GrowthBook-compatible bucket ranges: turning weights and coverage into hash intervals.

Each variation owns the interval that starts where the previous variation's weight ends and is
``coverage * weight`` long, so that raising coverage only adds units to an experiment and never
moves a unit from one variation to another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["choose_variation", "get_bucket_ranges", "get_equal_weights"]

# Weight vectors summing outside this tolerance are replaced by equal weights (as GrowthBook does).
WEIGHT_SUM_MIN = 0.99
WEIGHT_SUM_MAX = 1.01


def get_equal_weights(n: int) -> list[float]:
    """``n`` equal weights summing to 1; empty for ``n < 1``."""
    if n < 1:
        return []
    return [1 / n] * n


def is_valid_weights(weights: object, num_variations: int) -> bool:
    """Whether ``weights`` is one finite, non-negative number per variation, summing to ~1.

    Like the reference Python SDK, and stricter than the JS SDK (which checks only length and
    sum): negative weights would produce inverted ranges. The conformance suite has no such case.
    """
    if not isinstance(weights, Sequence) or isinstance(weights, str | bytes):
        return False
    if len(weights) != num_variations:
        return False
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, int | float):
            return False
        try:
            if not math.isfinite(w) or w < 0:
                return False
        except OverflowError:  # ints too large for a float
            return False
    return WEIGHT_SUM_MIN <= math.fsum(weights) <= WEIGHT_SUM_MAX


def get_bucket_ranges(
    num_variations: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """The [start, end) hash interval of each variation.

    Coverage is clamped to [0, 1]; missing or invalid weights (wrong length, negative, sum not
    within 0.99..1.01) fall back to equal weights, exactly as in GrowthBook.
    """
    if coverage < 0:
        coverage = 0.0
    if coverage > 1:
        coverage = 1.0
    if weights is None or not is_valid_weights(weights, num_variations):
        weights = get_equal_weights(num_variations)

    # Plain left-to-right float addition, not fsum: the ranges must equal GrowthBook's bit for bit.
    cumulative = 0.0
    ranges = []
    for w in weights:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def choose_variation(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """Index of the first range with ``start <= n < end``, or -1 when ``n`` is in none."""
    for i, (start, end) in enumerate(ranges):
        if start <= n < end:
            return i
    return -1
