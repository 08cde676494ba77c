"""Attribute analysis: correlations with redundant pairs, tests against the target, MI, PCA."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segments.engine.analysis import analyse_attributes, correlations, pca_summary
from segments.engine.features import FeatureMatrix


def _matrix(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (signal + rng.normal(scale=0.7, size=n) > 0).astype(int)
    numeric = np.column_stack(
        [
            signal,
            2 * signal + rng.normal(scale=0.05, size=n),  # redundant with the first
            rng.normal(size=n),  # noise
            np.ones(n),  # constant
        ]
    )
    plan = np.where(
        y == 1,
        rng.choice(["pro", "free"], n, p=[0.8, 0.2]),
        rng.choice(["pro", "free"], n, p=[0.2, 0.8]),
    ).astype(object)
    colour = rng.choice(["red", "blue"], n).astype(object)
    fm = FeatureMatrix(
        np.arange(n),
        0.0,
        ["signal", "echo", "noise", "constant"],
        numeric,
        ["plan", "colour"],
        np.column_stack([plan, colour]),
    )
    return fm, y


def test_correlations__near_copy__flagged_redundant_and_constant_is_undefined():
    # Given a signal, a near copy of it, noise and a constant column
    fm, _ = _matrix()
    # When computing the correlation matrices with threshold 0.8
    out = correlations(fm.numeric, fm.numeric_names, threshold=0.8)
    # Then exactly the signal/echo pair is flagged, in both Pearson and Spearman
    assert [(p["a"], p["b"]) for p in out["redundant_pairs"]] == [("signal", "echo")]
    assert out["redundant_pairs"][0]["pearson"] > 0.99
    assert out["redundant_pairs"][0]["spearman"] > 0.99
    # And the constant column's correlations are undefined (None), not 0 or NaN
    assert out["pearson"][3] == [None] * 4
    assert abs(out["spearman"][0][2]) < 0.1


def test_analyse_attributes__planted_signal__ranks_it_above_noise_and_is_json():
    # Given a target driven by `signal` and by the categorical `plan`
    fm, y = _matrix()
    # When analysing every attribute against it
    out = analyse_attributes(fm, y)
    tests = {t["attribute"]: t for t in out["tests"]}
    mi = {m["attribute"]: m["mutual_information"] for m in out["mutual_information"]}
    # Then ANOVA F and chi-squared separate the informative attributes from the noise
    assert tests["signal"]["test"] == "anova_f"
    assert tests["signal"]["p_value"] < 1e-10 < 0.01 < tests["noise"]["p_value"]
    assert tests["plan"]["test"] == "chi2"
    assert tests["plan"]["p_value"] < 1e-10
    assert tests["colour"]["p_value"] > 0.001
    assert tests["constant"]["statistic"] is None
    # And mutual information agrees
    assert mi["signal"] > 5 * mi["noise"]
    assert mi["plan"] > 5 * mi["colour"]
    # And the whole document is strict JSON (no NaN)
    json.dumps(out, allow_nan=False)


def test_analyse_attributes__single_class_target__refused():
    fm, y = _matrix(n=100)
    with pytest.raises(ValueError, match="single class"):
        analyse_attributes(fm, np.zeros_like(y))


def test_pca_summary__two_copies_and_noise__first_component_takes_two_thirds():
    # Given signal, its near copy and independent noise (the constant is dropped)
    fm, _ = _matrix()
    # When running PCA on the standardised attributes
    out = pca_summary(fm.numeric, fm.numeric_names)
    # Then the first component explains about 2/3 and loads on signal and echo equally
    assert out["dropped_constant"] == ["constant"]
    assert out["explained_variance_ratio"][0] == pytest.approx(2 / 3, abs=0.03)
    assert out["cumulative"][-1] == pytest.approx(1.0)
    first = dict(zip(out["names"], out["loadings"][0], strict=True))
    assert abs(first["signal"]) == pytest.approx(abs(first["echo"]), abs=0.01)
    assert abs(first["noise"]) < 0.1
