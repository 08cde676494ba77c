"""RFM scoring: recency, frequency and monetary scores 1-5 by quintiles, and the 11 named segments.

Pure (numpy only). Input: one row per customer of the active base (at least one purchase in the
window): days since the last purchase, number of purchases, money spent. Each measure is ranked
over the base and cut into quintiles: score = 1 + floor(5 * (rank - 1) / n), where rank is the
1-based position in ascending order of "better" (more recent, more frequent, more money).

Ties: customers with equal values always get the same score. A tie group takes the score of its
first position (the "min" rank), so the result does not depend on input order. When a tie group
straddles a quintile boundary the quintiles are uneven (e.g. half of a shop's customers buying
once puts them all in F=1 and leaves F=2 empty): that is the "where ties allow".

The named segments use R and F (the R x F grid in docs/segments.md); M is reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEGMENTS: tuple[tuple[str, str], ...] = (
    ("champions", "Champions"),
    ("loyal", "Loyal"),
    ("potential_loyalists", "Potential loyalists"),
    ("new_customers", "New customers"),
    ("promising", "Promising"),
    ("need_attention", "Need attention"),
    ("about_to_sleep", "About to sleep"),
    ("at_risk", "At risk"),
    ("cant_lose_them", "Can't lose them"),
    ("hibernating", "Hibernating"),
    ("lost", "Lost"),
)
SEGMENT_LABELS = dict(SEGMENTS)

# GRID[r - 1][f - 1]: the named segment of a customer with scores R = r and F = f.
GRID: tuple[tuple[str, ...], ...] = (
    # F=1          F=2              F=3               F=4               F=5
    ("lost", "hibernating", "at_risk", "at_risk", "cant_lose_them"),  # R=1
    ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"),  # R=2
    ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),  # R=3
    ("promising", "potential_loyalists", "potential_loyalists", "loyal", "loyal"),  # R=4
    (
        "new_customers",
        "potential_loyalists",
        "potential_loyalists",
        "champions",
        "champions",
    ),  # R=5
)


def segment_of(r: int, f: int) -> str:
    """The named segment (slug) of scores R = r, F = f (each 1-5)."""
    return GRID[r - 1][f - 1]


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """Scores 1-5 of `values` (higher value, higher score); equal values, equal scores.

    Rank with ties at their first position, then cut into fifths of the base.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # Start index of each element's tie group in sorted order (min rank - 1).
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_group[1:])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    sorted_scores = (1 + (5 * group_start) // n).astype(np.int8)
    scores = np.empty(n, dtype=np.int8)
    scores[order] = sorted_scores
    return scores


@dataclass(frozen=True, slots=True)
class RfmScores:
    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    segments: list[str]


def rfm_score(recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> RfmScores:
    """Scores of each customer (arrays aligned by customer). Fewer days since the last purchase
    is better, hence the negated recency."""
    r = quintile_scores(-np.asarray(recency_days, dtype=np.float64))
    f = quintile_scores(frequency)
    m = quintile_scores(monetary)
    grid = np.array(GRID, dtype=object)
    segments = grid[r.astype(np.intp) - 1, f.astype(np.intp) - 1].tolist() if len(r) else []
    return RfmScores(r=r, f=f, m=m, segments=segments)
