"""Ranking metrics for top-k recommendation lists (binary relevance).

Single-list functions (``precision_at_k`` ...) define each metric on one recommended list and one
set of relevant items; ``evaluate_lists`` averages them over users. Definitions (k = cut-off,
rel = the user's relevant items, hits = relevant items among the first k recommended):

- precision@k = |hits| / k  (a list shorter than k is counted as if padded with misses)
- recall@k    = |hits| / |rel|
- AP@k        = sum over ranks i <= k with a hit of precision@i, divided by min(k, |rel|); MAP@k is
  its mean over users
- NDCG@k      = DCG / IDCG with DCG = sum over hit ranks i (1-based) of 1 / log2(i + 1) and IDCG the
  DCG of min(k, |rel|) hits at the top
- catalog coverage = distinct items recommended to anyone / items in the catalogue
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def _hits(recommended: Sequence, relevant: set, k: int) -> list[bool]:
    if k <= 0:
        raise ValueError("k must be positive")
    return [item in relevant for item in list(recommended)[:k]]


def precision_at_k(recommended: Sequence, relevant: Iterable, k: int) -> float:
    """Share of the first k recommendations that are relevant."""
    return sum(_hits(recommended, set(relevant), k)) / k


def recall_at_k(recommended: Sequence, relevant: Iterable, k: int) -> float:
    """Share of the relevant items found among the first k recommendations (0 without any)."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    return sum(_hits(recommended, relevant, k)) / len(relevant)


def average_precision_at_k(recommended: Sequence, relevant: Iterable, k: int) -> float:
    """AP@k: mean of precision@i at every hit rank i <= k, normalised by min(k, |relevant|)."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    total, found = 0.0, 0
    for rank, hit in enumerate(_hits(recommended, relevant, k), start=1):
        if hit:
            found += 1
            total += found / rank
    return total / min(k, len(relevant))


def ndcg_at_k(recommended: Sequence, relevant: Iterable, k: int) -> float:
    """Binary NDCG@k with the log2(rank + 1) discount."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    dcg = sum(
        1.0 / math.log2(rank + 1)
        for rank, hit in enumerate(_hits(recommended, relevant, k), start=1)
        if hit
    )
    idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / idcg


def catalog_coverage(lists: Iterable[Sequence], n_catalog: int) -> float:
    """Distinct recommended items over the catalogue size (0 for an empty catalogue)."""
    if n_catalog <= 0:
        return 0.0
    seen: set = set()
    for items in lists:
        seen.update(items)
    return len(seen) / n_catalog


METRIC_NAMES = ("precision", "recall", "map", "ndcg")


def evaluate_lists(
    recommended: np.ndarray, relevant: Sequence[np.ndarray], k: int, n_catalog: int
) -> dict[str, float]:
    """Mean precision/recall/MAP/NDCG@k over users, plus catalog coverage.

    ``recommended`` is an (n_users, >= k) integer array (-1 pads a short list); ``relevant[u]`` the
    relevant item indices of user u (users with none must be left out by the caller).
    """
    n_users = len(relevant)
    if n_users == 0:
        return {
            "precision": 0.0,
            "recall": 0.0,
            "map": 0.0,
            "ndcg": 0.0,
            "coverage": 0.0,
            "users": 0,
        }
    recs = np.asarray(recommended)[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)
    ranks = np.arange(1, k + 1)
    sums = np.zeros(4)
    for u in range(n_users):
        rel = relevant[u]
        hit = np.isin(recs[u], rel) & (recs[u] >= 0)
        n_rel = len(rel)
        n_hit = int(hit.sum())
        sums[0] += n_hit / k
        sums[1] += n_hit / n_rel
        if n_hit:
            cum = np.cumsum(hit)
            sums[2] += float((cum[hit] / ranks[hit]).sum()) / min(k, n_rel)
            sums[3] += float(discounts[hit].sum()) / ideal[min(k, n_rel) - 1]
    flat = recs[recs >= 0]
    coverage = len(np.unique(flat)) / n_catalog if n_catalog > 0 else 0.0
    means = sums / n_users
    return {
        "precision": float(means[0]),
        "recall": float(means[1]),
        "map": float(means[2]),
        "ndcg": float(means[3]),
        "coverage": float(coverage),
        "users": int(n_users),
    }
