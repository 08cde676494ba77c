"""Clustering: k by silhouette and Davies-Bouldin, stability, descriptions, assignment."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from segments.engine.clustering import NOISE, ClusterModel, Scaler, cluster, describe

NAMES = ["recency_days", "frequency", "monetary"]


def _planted(n_per=400, seed=0):
    """Three customer groups: lapsed one-timers, regulars, recent big spenders."""
    rng = np.random.default_rng(seed)
    groups = [
        (300, 1, 15),  # recency days, purchases, spend
        (60, 6, 120),
        (5, 20, 900),
    ]
    X, truth = [], []
    for g, (rec, freq, money) in enumerate(groups):
        X.append(
            np.column_stack(
                [
                    rng.normal(rec, rec * 0.15, n_per).clip(0),
                    rng.poisson(freq, n_per) + 1,
                    rng.lognormal(np.log(money), 0.25, n_per),
                ]
            )
        )
        truth += [g] * n_per
    return np.vstack(X), np.asarray(truth)


def test_cluster__planted_groups__k_found_ari_high_and_every_k_recorded():
    # Given three planted customer groups
    X, truth = _planted()
    # When clustering with K-Means over k = 2..6
    labels, _model, report = cluster(X, NAMES, k_range=(2, 6), seed=0)
    # Then k = 3 is chosen and the groups are recovered
    assert report["k"] == 3
    assert adjusted_rand_score(truth, labels) > 0.9
    # And silhouette, Davies-Bouldin and inertia are stored for every k
    assert [r["k"] for r in report["per_k"]] == [2, 3, 4, 5, 6]
    best = max(report["per_k"], key=lambda r: r["silhouette"])
    assert best["k"] == 3
    assert all(r["davies_bouldin"] > 0 and r["inertia"] > 0 for r in report["per_k"])
    inertias = [r["inertia"] for r in report["per_k"]]
    assert inertias == sorted(inertias, reverse=True)
    # And the labelling is stable across seeds
    assert report["stability"]["min"] > 0.95
    # And money and counts were log-scaled, recency not
    assert report["log_scaled"] == ["frequency", "monetary"]
    # And the PCA sample has one point per sampled profile, coloured by cluster
    assert len(report["pca"]["points"]) == len(X)
    assert {p[2] for p in report["pca"]["points"]} == {0, 1, 2}


def test_cluster__descriptions__name_the_planted_groups():
    # Given the planted groups clustered
    X, truth = _planted()
    labels, _, report = cluster(X, NAMES, k=3, seed=0)
    # When reading the description of the cluster holding most of each group
    words = {}
    for g in range(3):
        c = np.bincount(labels[truth == g]).argmax()
        words[g] = report["clusters"][c]["description"]
    # Then the big spenders are recent and high spend, the one-timers lapsed and low
    assert "recent" in words[2]
    assert "high spend" in words[2]
    assert "high frequency" in words[2]
    assert "lapsed" in words[0]
    assert "low spend" in words[0]


def test_cluster_model__new_profiles__nearest_centroid_and_round_trip():
    # Given a model fitted on one sample of the groups
    X, _ = _planted(seed=0)
    labels, model, _ = cluster(X, NAMES, k=3, seed=0)
    # When a fresh sample from the same groups is assigned after a round trip through a dict
    X2, truth2 = _planted(seed=1)
    again = ClusterModel.from_dict(model.to_dict())
    assigned = again.assign(X2)
    # Then the assignment matches the fitted labels' groups and is identical for the fit data
    assert adjusted_rand_score(truth2, assigned) > 0.9
    np.testing.assert_array_equal(again.assign(X), labels)


def test_cluster__dbscan__far_outlier_is_noise_also_when_assigned_later():
    # Given the planted groups plus one absurd outlier
    X, _ = _planted(n_per=200)
    X = np.vstack([X, [[5000, 500, 1e7]]])
    # When clustering with DBSCAN
    labels, model, report = cluster(X, NAMES, method="dbscan", eps=0.5, min_samples=10)
    # Then the outlier is noise and the groups are clusters
    assert labels[-1] == NOISE
    assert report["k"] >= 3
    assert report["noise"] >= 1
    # And a new outlier is assigned to noise, a typical profile to a cluster
    assert model.assign(np.array([[9000, 800, 1e8]])).tolist() == [NOISE]
    assert model.assign(X[:1]).tolist() != [NOISE]


def test_cluster__agglomerative__recovers_groups_on_a_sample():
    X, truth = _planted(n_per=300)
    labels, _, report = cluster(X, NAMES, method="agglomerative", k=3, sample=600)
    assert report["fit_sample"] == 600
    assert adjusted_rand_score(truth, labels) > 0.9


@pytest.mark.parametrize(
    "kwargs",
    [{"k_range": (1, 5)}, {"k_range": (2, 500)}, {"method": "magic"}, {"scaling": "zz"}, {"k": 1}],
)
def test_cluster__absurd_parameters__refused(kwargs):
    X, _ = _planted(n_per=50)
    with pytest.raises(ValueError, match=r"k|method|scaling"):
        cluster(X, NAMES, **kwargs)


def test_scaler__minmax__maps_to_unit_interval_and_logs_money():
    X, _ = _planted(n_per=50)
    s = Scaler.fit(X, NAMES, "minmax")
    Z = s.transform(X)
    assert Z.min() == pytest.approx(0)
    assert Z.max() == pytest.approx(1)
    assert s.log == [False, True, True]


def test_describe__population_like_centroid__typical():
    pop = np.random.default_rng(0).normal(size=(500, 3)) + 10
    assert describe(np.array([[10, 10, 10]]), pop, NAMES) == ["typical"]
