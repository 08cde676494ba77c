"""Attribute analysis: which attributes matter for a target, and which repeat each other.

Pure numpy/scipy/scikit-learn over a `FeatureMatrix` and a target vector. Every result is plain
JSON-able data (lists, floats, None for undefined values) so the run record, the API and the
admin page show the same numbers.

scipy and scikit-learn are imported inside the functions that use them: Django loads this
module in every web process (admin -> analysis services), which never fits a model; importing
them at the top cost each web process tens of MB (tests/unit/config/test_web_imports.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .features import FeatureMatrix


def _num(x: float) -> float | None:
    """A JSON-safe float: NaN and infinities (undefined statistics) become None."""
    x = float(x)
    return x if math.isfinite(x) else None


def correlations(X: np.ndarray, names: Sequence[str], *, threshold: float = 0.8) -> dict[str, Any]:
    """Pearson and Spearman matrices, and the pairs with |r| above `threshold` in either.

    A constant column has no defined correlation: its row and column are None.
    """
    from scipy import stats

    if not 0 < threshold <= 1:
        raise ValueError("threshold must be in (0, 1]")
    p = X.shape[1]
    constant = np.ptp(X, axis=0) == 0 if X.shape[0] else np.ones(p, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        if X.shape[0] >= 2 and p:
            pearson = np.atleast_2d(np.corrcoef(X, rowvar=False))
            spearman = np.atleast_2d(stats.spearmanr(X).statistic) if p > 1 else np.ones((1, 1))
        else:
            pearson = spearman = np.full((p, p), np.nan)
    for m in (pearson, spearman):
        m[constant, :] = np.nan
        m[:, constant] = np.nan
    redundant = []
    for i in range(p):
        for j in range(i + 1, p):
            rp, rs = pearson[i, j], spearman[i, j]
            strongest = max(abs(rp) if np.isfinite(rp) else 0, abs(rs) if np.isfinite(rs) else 0)
            if strongest > threshold:
                redundant.append(
                    {"a": names[i], "b": names[j], "pearson": _num(rp), "spearman": _num(rs)}
                )
    redundant.sort(key=lambda r: -max(abs(r["pearson"] or 0), abs(r["spearman"] or 0)))
    return {
        "names": list(names),
        "pearson": [[_num(v) for v in row] for row in pearson],
        "spearman": [[_num(v) for v in row] for row in spearman],
        "threshold": threshold,
        "redundant_pairs": redundant,
    }


def target_tests(fm: FeatureMatrix, y: np.ndarray) -> list[dict[str, Any]]:
    """ANOVA F for numeric attributes and chi-squared for categorical ones against a class target.

    The target has at least two classes (binary event-in-window, or a categorical trait).
    """
    from scipy import stats
    from sklearn.feature_selection import f_classif

    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        raise ValueError("the target has a single class: nothing to test against")
    out: list[dict[str, Any]] = []
    if fm.numeric.shape[1]:
        with np.errstate(invalid="ignore", divide="ignore"), _quiet():
            f, p = f_classif(fm.numeric, y)
        for name, fv, pv in zip(fm.numeric_names, f, p, strict=True):
            out.append(
                {
                    "attribute": name,
                    "kind": "numeric",
                    "test": "anova_f",
                    "statistic": _num(fv),
                    "p_value": _num(pv),
                }
            )
    for j, name in enumerate(fm.categorical_names):
        values = fm.categorical[:, j].astype(str)
        levels, vi = np.unique(values, return_inverse=True)
        classes, yi = np.unique(y, return_inverse=True)
        table = np.zeros((len(levels), len(classes)))
        np.add.at(table, (vi, yi), 1)
        if len(levels) < 2:
            stat, pv, dof = math.nan, math.nan, 0
        else:
            res = stats.chi2_contingency(table, correction=False)
            stat, pv, dof = res.statistic, res.pvalue, int(res.dof)
        out.append(
            {
                "attribute": name,
                "kind": "categorical",
                "test": "chi2",
                "statistic": _num(stat),
                "p_value": _num(pv),
                "dof": dof,
            }
        )
    return out


def mutual_information(
    fm: FeatureMatrix, y: np.ndarray, *, sample: int = 20000, seed: int = 0
) -> list[dict[str, Any]]:
    """Mutual information (nats) of each attribute with the target, on a bounded sample."""
    from sklearn.feature_selection import mutual_info_classif

    rng = np.random.default_rng(seed)
    n = len(y)
    rows = rng.choice(n, size=sample, replace=False) if n > sample else np.arange(n)
    cols = [fm.numeric[rows]]
    discrete = [False] * fm.numeric.shape[1]
    for j in range(len(fm.categorical_names)):
        _, codes = np.unique(fm.categorical[rows, j].astype(str), return_inverse=True)
        cols.append(codes[:, None].astype(np.float64))
        discrete.append(True)
    X = np.hstack(cols)
    names = fm.numeric_names + fm.categorical_names
    if not X.shape[1]:
        return []
    mi = mutual_info_classif(
        X, np.asarray(y)[rows], discrete_features=np.asarray(discrete), random_state=seed
    )
    return [{"attribute": a, "mutual_information": _num(v)} for a, v in zip(names, mi, strict=True)]


def pca_summary(X: np.ndarray, names: Sequence[str], *, max_components: int = 10) -> dict[str, Any]:
    """PCA on standardised attributes: explained variance ratio per component and loadings."""
    from sklearn.decomposition import PCA

    sd = X.std(axis=0)
    keep = sd > 0
    Z = (X[:, keep] - X[:, keep].mean(axis=0)) / sd[keep]
    kept = [n for n, k in zip(names, keep, strict=True) if k]
    k = min(max_components, Z.shape[1], max(Z.shape[0] - 1, 0))
    if k < 1:
        return {"components": 0, "explained_variance_ratio": [], "loadings": [], "names": kept}
    pca = PCA(n_components=k, random_state=0).fit(Z)
    return {
        "components": k,
        "names": kept,
        "explained_variance_ratio": [_num(v) for v in pca.explained_variance_ratio_],
        "cumulative": [_num(v) for v in np.cumsum(pca.explained_variance_ratio_)],
        "loadings": [[_num(v) for v in comp] for comp in pca.components_],
        "dropped_constant": [n for n, k in zip(names, keep, strict=True) if not k],
    }


def analyse_attributes(
    fm: FeatureMatrix,
    y: np.ndarray,
    *,
    threshold: float = 0.8,
    sample: int = 20000,
    seed: int = 0,
) -> dict[str, Any]:
    """The full analysis of the attributes in `fm` against the target `y` (one JSON document)."""
    y = np.asarray(y)
    if len(y) != len(fm.profile_ids):
        raise ValueError("target and matrix have different lengths")
    rng = np.random.default_rng(seed)
    n = len(y)
    rows = rng.choice(n, size=sample, replace=False) if n > sample else np.arange(n)
    classes, counts = np.unique(y, return_counts=True)
    return {
        "profiles": int(n),
        "sampled": len(rows),
        "target_classes": {str(c): int(k) for c, k in zip(classes, counts, strict=True)},
        "correlations": correlations(fm.numeric[rows], fm.numeric_names, threshold=threshold),
        "tests": target_tests(fm, y),
        "mutual_information": mutual_information(fm, y, sample=sample, seed=seed),
        "pca": pca_summary(fm.numeric[rows], fm.numeric_names),
    }


class _quiet:
    """Silence scikit-learn's warnings about constant features (reported as None instead)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
