"""The protocol: tuning never sees the test part."""

from __future__ import annotations

import numpy as np

from recommendations.engine.evaluation import Dataset, run_protocol
from recommendations.engine.split import time_split
from recommendations.engine.synthetic import generate


def _dataset(data, items=None):
    return Dataset(
        data.users,
        data.items if items is None else items,
        np.ones(len(data.users)),
        data.timestamps,
        data.n_users,
        data.n_items,
    )


def test_run_protocol__test_part_scrambled__same_tuned_parameters_different_scores():
    # Given synthetic data, and a copy whose held-out (test) interactions point at random items
    data = generate(n_interactions=8_000, n_users=400, n_items=150, n_groups=3, seed=2)
    test_rows = time_split(data.users, data.timestamps).test
    scrambled = data.items.copy()
    scrambled[test_rows] = np.random.default_rng(9).integers(0, data.n_items, test_rows.sum())
    # When running the protocol on both
    a = run_protocol(_dataset(data), k=5, budget_seconds=120, threads=1)
    b = run_protocol(_dataset(data, scrambled), k=5, budget_seconds=120, threads=1)
    # Then the tuning trials and chosen parameters are identical (validation only saw training)
    assert a.protocol["als_params"] == b.protocol["als_params"]
    assert a.protocol["item_item_params"] == b.protocol["item_item_params"]
    assert [t["val_ndcg"] for t in a.tuning.trials] == [t["val_ndcg"] for t in b.tuning.trials]
    # while the test figures do change (the test part is what they measure)
    assert a.results["als"]["precision"] != b.results["als"]["precision"]


def test_run_protocol__keep_seen_items__relevance_includes_repeats():
    # Given users re-consuming the same items
    data = generate(n_interactions=4_000, n_users=200, n_items=60, n_groups=2, seed=4)
    # When evaluating with and without excluding seen items
    excl = run_protocol(_dataset(data), k=5, budget_seconds=0, threads=1)
    keep = run_protocol(_dataset(data), k=5, budget_seconds=0, threads=1, exclude_seen=False)
    # Then keeping seen items evaluates at least as many users (repeats count as relevant)
    assert keep.protocol["evaluated_users"] >= excl.protocol["evaluated_users"]
    assert keep.protocol["exclude_seen"] is False
    # and a zero budget stops the search after the defaults
    assert excl.tuning.stopped_by_budget


def test_tune__costlier_candidate_barely_better__cheaper_kept(monkeypatch):
    # Given validation scores where 128 factors beat 32 by only 1 % (noise-sized)
    from recommendations.engine import evaluation
    from recommendations.engine.models import ALSParams

    def fake_score(model, held, k, n_catalog, exclude_seen):
        p = getattr(model, "params", None)
        if isinstance(p, ALSParams):
            return {"ndcg": 0.101 if p.factors == 128 else 0.100}
        return {"ndcg": 0.05}

    class FakeALS:
        def __init__(self, params, threads=None):
            self.params = params

        def fit(self, matrix):
            return self

    monkeypatch.setattr(evaluation, "score_model", fake_score)
    monkeypatch.setattr(evaluation, "ALSModel", FakeALS)
    monkeypatch.setattr(evaluation.ItemItemModel, "fit", lambda self, m: self)
    held = evaluation.Heldout(
        train=__import__("scipy.sparse").sparse.csr_matrix((2, 2)),
        users=np.array([0]),
        relevant=[np.array([1])],
        heldout_rows=1,
    )
    held.train[0, 0] = 1.0
    # When tuning / Then the default 32 factors stay (128 would need a 2 % gain)
    result = evaluation.tune(held, 10, 2, budget_seconds=60)
    assert result.als.factors == 32
    assert any(t["factors"] == 128 for t in result.trials if t["model"] == "als")
