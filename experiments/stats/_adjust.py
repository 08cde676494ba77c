"""Multiple-comparison adjustments across arms x metrics: Holm (family-wise error) and
Benjamini-Hochberg (false discovery rate). Both return adjusted p-values in the input order,
monotone and capped at 1, so "significant" is simply ``adjusted < alpha``."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["benjamini_hochberg", "holm"]


def _checked(p_values: Sequence[float]) -> list[float]:
    values = list(p_values)
    for p in values:
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise ValueError(f"p-values must be numbers in [0, 1], got {p!r}")
        if math.isnan(p):
            raise ValueError("p-values must not be NaN")
    return [float(p) for p in values]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values."""
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=lambda i: values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values (q-values)."""
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=lambda i: values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k  # 1-based rank in ascending order
        running = min(running, values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted
