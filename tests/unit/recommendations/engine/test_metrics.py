"""Ranking metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommendations.engine.metrics import (
    average_precision_at_k,
    catalog_coverage,
    evaluate_lists,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

# recommended [a, b, c, d], relevant {a, c, e}: hits at ranks 1 and 3
RECS = ["a", "b", "c", "d"]
REL = {"a", "c", "e"}


def test_precision_at_k__two_hits_in_four__half():
    # Given two relevant items among four recommended / When / Then
    assert precision_at_k(RECS, REL, 4) == pytest.approx(0.5)
    assert precision_at_k(RECS, REL, 2) == pytest.approx(0.5)
    assert precision_at_k(RECS, REL, 1) == pytest.approx(1.0)


def test_precision_at_k__short_list__counts_missing_slots_as_misses():
    # Given a list of 2 with 1 hit cut at k=4 / When / Then 1/4
    assert precision_at_k(["a", "x"], REL, 4) == pytest.approx(0.25)


def test_recall_at_k__two_of_three_relevant__two_thirds():
    # Given 2 of 3 relevant items found / When / Then
    assert recall_at_k(RECS, REL, 4) == pytest.approx(2 / 3)
    assert recall_at_k(RECS, set(), 4) == 0.0


def test_average_precision_at_k__hits_at_1_and_3__hand_value():
    # Given hits at ranks 1 (P=1) and 3 (P=2/3), min(k, |rel|) = 3
    # When computing AP@4 / Then (1 + 2/3) / 3
    assert average_precision_at_k(RECS, REL, 4) == pytest.approx((1 + 2 / 3) / 3)
    # and at k=2 only the rank-1 hit counts, normalised by min(2, 3) = 2
    assert average_precision_at_k(RECS, REL, 2) == pytest.approx(1 / 2)


def test_ndcg_at_k__hits_at_1_and_3__hand_value():
    # Given hits at ranks 1 and 3, three relevant items
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    # When / Then
    assert ndcg_at_k(RECS, REL, 4) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "c"], {"a", "c"}, 2) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"a"}, 2) == 0.0


def test_catalog_coverage__three_distinct_of_ten__three_tenths():
    # Given lists sharing items / When / Then distinct / catalogue
    assert catalog_coverage([[1, 2], [2, 3], []], 10) == pytest.approx(0.3)
    assert catalog_coverage([[1]], 0) == 0.0


def test_metric__k_not_positive__refused():
    with pytest.raises(ValueError, match="k must be positive"):
        precision_at_k(RECS, REL, 0)


def test_evaluate_lists__random_lists__equal_the_mean_of_single_list_functions():
    # Given random lists of distinct items, some short (padded with -1 at the end)
    rng = np.random.default_rng(3)
    k = 5
    recs = np.full((50, 8), -1)
    for row in recs:
        length = rng.integers(0, 9)
        row[:length] = rng.choice(30, length, replace=False)
    relevant = [np.unique(rng.integers(0, 30, size=rng.integers(1, 6))) for _ in range(50)]
    # When evaluating them in one go
    result = evaluate_lists(recs, relevant, k, n_catalog=30)
    # Then every metric is the mean of the single-list definition
    lists = [[x for x in row[:k] if x >= 0] for row in recs]
    for name, fn in [
        ("precision", precision_at_k),
        ("recall", recall_at_k),
        ("map", average_precision_at_k),
        ("ndcg", ndcg_at_k),
    ]:
        expected = np.mean([fn(lst, rel, k) for lst, rel in zip(lists, relevant, strict=True)])
        assert result[name] == pytest.approx(expected), name
    assert result["coverage"] == pytest.approx(catalog_coverage(lists, 30))
    assert result["users"] == 50
