"""Clustering profiles: scaling, K-Means with k chosen by silhouette and Davies-Bouldin,
stability across seeds, DBSCAN and agglomerative, descriptions, assignment of new profiles.

Pure numpy/scikit-learn. Quadratic methods (silhouette, DBSCAN, agglomerative) only ever see a
bounded sample; the rest of the profiles are assigned to the nearest centroid (DBSCAN: to the
cluster of the nearest core sample within eps, else noise), so memory stays bounded.

scikit-learn is imported inside the functions that use it: Django loads this module in every
web process (admin -> analysis services), which never fits a model; importing them at the top
cost each web process tens of MB (tests/unit/config/test_web_imports.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from .features import SKEWED_PREFIXES

Scaling = Literal["standard", "minmax"]
Method = Literal["kmeans", "minibatch", "dbscan", "agglomerative"]
NOISE = -1
# Above this many rows K-Means ("kmeans") switches to MiniBatchKMeans on its own.
MINIBATCH_ABOVE = 200_000


@dataclass
class Scaler:
    """Column-wise log1p (skewed non-negative columns) then standard or min-max scaling."""

    names: list[str]
    method: Scaling
    log: list[bool]
    center: list[float]
    scale: list[float]

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        names: Sequence[str],
        method: Scaling = "standard",
        log: Sequence[str] | None = None,
    ) -> Scaler:
        """`log`: the columns to log1p; default every skewed (money, count) column with no
        negative value."""
        if method not in ("standard", "minmax"):
            raise ValueError(f"unknown scaling {method!r}")
        if log is None:
            logs = [
                n.startswith(SKEWED_PREFIXES) and bool((X[:, j] >= 0).all())
                for j, n in enumerate(names)
            ]
        else:
            logs = [n in set(log) for n in names]
            for j, flag in enumerate(logs):
                if flag and (X[:, j] < 0).any():
                    raise ValueError(f"cannot log-scale {names[j]}: it has negative values")
        T = _log_cols(X, logs)
        if method == "standard":
            center = T.mean(axis=0)
            scale = T.std(axis=0)
        else:
            center = T.min(axis=0)
            scale = T.max(axis=0) - center
        scale = np.where(scale > 0, scale, 1.0)
        return cls(list(names), method, logs, center.tolist(), scale.tolist())

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (_log_cols(X, self.log) - np.asarray(self.center)) / np.asarray(self.scale)


def _log_cols(X: np.ndarray, logs: Sequence[bool]) -> np.ndarray:
    T = np.asarray(X, dtype=np.float64).copy()
    for j, flag in enumerate(logs):
        if flag:
            T[:, j] = np.log1p(np.maximum(T[:, j], 0))
    return T


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _kmeans(k: int, n: int, seed: int, method: Method):
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if method == "minibatch" or (method == "kmeans" and n > MINIBATCH_ABOVE):
        return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    return KMeans(n_clusters=k, random_state=seed, n_init=3)


def choose_k(
    Z: np.ndarray,
    k_range: tuple[int, int] = (2, 10),
    *,
    seed: int = 0,
    sample: int = 5000,
    method: Method = "kmeans",
) -> dict[str, Any]:
    """Fit K-Means for every k in the range; record inertia, silhouette and Davies-Bouldin.

    Silhouette and Davies-Bouldin are computed on the same bounded sample (silhouette is
    quadratic). The chosen k has the best mean rank of the two (silhouette high, DB low), ties
    going to the higher silhouette: silhouette alone tends to pick k=2 on blobs that overlap,
    DB alone over-splits; agreeing ranks are the usual compromise.
    """
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    lo, hi = k_range
    n = len(Z)
    if lo < 2 or hi < lo or hi > 50:
        raise ValueError("k range must satisfy 2 <= min <= max <= 50")
    if n < hi + 1:
        raise ValueError(f"{n} profiles are too few for up to {hi} clusters")
    rows = _sample(n, sample, seed)
    per_k = []
    models = {}
    for k in range(lo, hi + 1):
        km = _kmeans(k, n, seed, method).fit(Z)
        labels = km.labels_[rows]
        if len(np.unique(labels)) < 2:
            sil, db = math.nan, math.nan
        else:
            sil = float(silhouette_score(Z[rows], labels))
            db = float(davies_bouldin_score(Z[rows], labels))
        per_k.append(
            {"k": k, "inertia": float(km.inertia_), "silhouette": sil, "davies_bouldin": db}
        )
        models[k] = km
    sil_rank = _rank(
        [-r["silhouette"] if math.isfinite(r["silhouette"]) else math.inf for r in per_k]
    )
    db_rank = _rank(
        [r["davies_bouldin"] if math.isfinite(r["davies_bouldin"]) else math.inf for r in per_k]
    )
    best = min(range(len(per_k)), key=lambda i: (sil_rank[i] + db_rank[i], sil_rank[i]))
    for r in per_k:
        for key in ("silhouette", "davies_bouldin"):
            r[key] = r[key] if math.isfinite(r[key]) else None
    return {
        "per_k": per_k,
        "k": per_k[best]["k"],
        "model": models[per_k[best]["k"]],
        "sample": len(rows),
    }


def _rank(values: Sequence[float]) -> list[int]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0] * len(values)
    for r, i in enumerate(order):
        ranks[i] = r
    return ranks


def stability(
    Z: np.ndarray,
    k: int,
    *,
    seeds: Sequence[int] = (1, 2, 3),
    method: Method = "kmeans",
    reference: np.ndarray | None = None,
    sample: int = 50000,
) -> dict[str, Any]:
    """Adjusted Rand index between the reference labelling and K-Means runs with other seeds."""
    from sklearn.metrics import adjusted_rand_score

    rows = _sample(len(Z), sample, 0)
    Zs = Z[rows]
    if reference is None:
        reference = _kmeans(k, len(Zs), 0, method).fit(Zs).labels_
    else:
        reference = reference[rows]
    scores = []
    for s in seeds:
        labels = _kmeans(k, len(Zs), s, method).fit(Zs).labels_
        scores.append(float(adjusted_rand_score(reference, labels)))
    return {
        "seeds": list(seeds),
        "ari": scores,
        "mean": float(np.mean(scores)),
        "min": float(np.min(scores)),
    }


@dataclass
class ClusterModel:
    """What scoring needs between runs: the scaler, centroids (scaled space) and labels."""

    method: str
    scaler: Scaler
    centroids: list[list[float]]
    descriptions: list[str]
    sizes: list[int]
    eps: float | None = None  # DBSCAN: a new profile further than this from every core is noise
    core: list[list[float]] = field(default_factory=list)
    core_labels: list[int] = field(default_factory=list)

    def assign(self, X: np.ndarray) -> np.ndarray:
        """The cluster of each new profile (nearest centroid; DBSCAN: NOISE when too far)."""
        Z = self.scaler.transform(X)
        if self.method == "dbscan":
            return _assign_to_cores(
                Z, np.asarray(self.core), np.asarray(self.core_labels), self.eps or 0.0
            )
        return _nearest(Z, np.asarray(self.centroids))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterModel:
        d = dict(d)
        d["scaler"] = Scaler(**d["scaler"])
        return cls(**d)


def _nearest(Z: np.ndarray, C: np.ndarray, chunk: int = 65536) -> np.ndarray:
    out = np.empty(len(Z), dtype=np.int64)
    cc = (C * C).sum(axis=1)
    for start in range(0, len(Z), chunk):
        block = Z[start : start + chunk]
        d = cc[None, :] - 2 * block @ C.T
        out[start : start + chunk] = d.argmin(axis=1)
    return out


def _assign_to_cores(
    Z: np.ndarray, core: np.ndarray, labels: np.ndarray, eps: float, chunk: int = 8192
) -> np.ndarray:
    out = np.full(len(Z), NOISE, dtype=np.int64)
    if not len(core):
        return out
    cc = (core * core).sum(axis=1)
    for start in range(0, len(Z), chunk):
        block = Z[start : start + chunk]
        d2 = np.maximum(cc[None, :] - 2 * block @ core.T + (block * block).sum(1)[:, None], 0)
        j = d2.argmin(axis=1)
        near = d2[np.arange(len(block)), j] <= eps * eps
        out[start : start + chunk] = np.where(near, labels[j], NOISE)
    return out


def describe(
    centroids_raw: np.ndarray,
    population: np.ndarray,
    names: Sequence[str],
    *,
    top: int = 3,
    min_z: float = 0.5,
) -> list[str]:
    """Words for each centroid relative to the population ("high frequency, high spend, recent").

    Compares each centroid (in original units) with the population's median and spread (robust
    z: difference over 1.4826 x MAD, falling back to the standard deviation) and names the
    `top` strongest differences above `min_z`; a cluster close to the population is "typical".
    """
    med = np.median(population, axis=0)
    mad = 1.4826 * np.median(np.abs(population - med), axis=0)
    sd = population.std(axis=0)
    spread = np.where(mad > 0, mad, np.where(sd > 0, sd, 1.0))
    out = []
    for c in np.atleast_2d(centroids_raw):
        z = (c - med) / spread
        order = np.argsort(-np.abs(z))
        words = [_word(names[j], z[j]) for j in order[:top] if abs(z[j]) >= min_z]
        out.append(", ".join(words) if words else "typical")
    return out


_LABELS = {
    "monetary": "spend",
    "avg_order_value": "order value",
    "frequency": "frequency",
    "tenure_days": "tenure",
    "events": "activity",
}


def _word(name: str, z: float) -> str:
    if name in ("recency_days", "purchase_recency_days"):
        # More days since the last event is *less* recent.
        what = "recent" if name == "recency_days" else "recent buyer"
        return what if z < 0 else ("lapsed" if name == "recency_days" else "lapsed buyer")
    label = _LABELS.get(name, name)
    return f"{'high' if z > 0 else 'low'} {label}"


def pca_projection(
    Z: np.ndarray, labels: np.ndarray, *, sample: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """A 2-D PCA projection of a sample, for the scatter chart."""
    from sklearn.decomposition import PCA

    rows = _sample(len(Z), sample, seed)
    if Z.shape[1] < 2 or len(rows) < 3:
        return {"points": [], "explained_variance_ratio": []}
    pca = PCA(n_components=2, random_state=seed).fit(Z[rows])
    P = pca.transform(Z[rows])
    return {
        "points": [
            [round(float(x), 4), round(float(y), 4), int(lbl)]
            for (x, y), lbl in zip(P, labels[rows], strict=True)
        ],
        "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_],
    }


def cluster(
    X: np.ndarray,
    names: Sequence[str],
    *,
    method: Method = "kmeans",
    scaling: Scaling = "standard",
    log: Sequence[str] | None = None,
    k_range: tuple[int, int] = (2, 10),
    k: int | None = None,
    eps: float = 0.5,
    min_samples: int = 10,
    seed: int = 0,
    sample: int = 5000,
    stability_seeds: Sequence[int] = (1, 2, 3),
) -> tuple[np.ndarray, ClusterModel, dict[str, Any]]:
    """Cluster the rows of X: (labels, model for new profiles, report for the run record)."""
    from sklearn.cluster import DBSCAN, AgglomerativeClustering

    if not len(X):
        raise ValueError("no profiles to cluster")
    if X.shape[1] < 1:
        raise ValueError("no features chosen")
    scaler = Scaler.fit(X, names, scaling, log)
    Z = scaler.transform(X)
    report: dict[str, Any] = {
        "method": method,
        "scaling": scaling,
        "profiles": len(X),
        "log_scaled": [n for n, f in zip(names, scaler.log, strict=True) if f],
    }
    eps_used = None
    core: list[list[float]] = []
    core_labels: list[int] = []
    if method in ("kmeans", "minibatch"):
        if k is None:
            chosen = choose_k(Z, k_range, seed=seed, sample=sample, method=method)
            km = chosen["model"]
            report["per_k"] = chosen["per_k"]
            report["silhouette_sample"] = chosen["sample"]
        else:
            if not 2 <= k <= 50 or k >= len(X):
                raise ValueError("k must be in 2..50 and below the number of profiles")
            km = _kmeans(k, len(X), seed, method).fit(Z)
        labels = km.labels_.astype(np.int64)
        centroids = km.cluster_centers_
        report["k"] = int(centroids.shape[0])
        if stability_seeds:
            report["stability"] = stability(
                Z, report["k"], seeds=stability_seeds, method=method, reference=labels
            )
    elif method in ("dbscan", "agglomerative"):
        rows = _sample(len(Z), sample, seed)
        Zs = Z[rows]
        if method == "dbscan":
            if eps <= 0 or min_samples < 1:
                raise ValueError("eps must be positive and min_samples at least 1")
            db = DBSCAN(eps=eps, min_samples=min_samples).fit(Zs)
            sample_labels = db.labels_
            core = Zs[db.core_sample_indices_].tolist()
            core_labels = sample_labels[db.core_sample_indices_].tolist()
            eps_used = eps
            labels = _assign_to_cores(
                Z,
                np.asarray(core).reshape(-1, Z.shape[1]),
                np.asarray(core_labels, dtype=np.int64),
                eps,
            )
            found = sorted(set(core_labels))
            centroids = (
                np.vstack([Zs[sample_labels == c].mean(axis=0) for c in found])
                if found
                else np.zeros((0, Z.shape[1]))
            )
        else:
            n_clusters = k or 4
            if not 2 <= n_clusters <= 50 or n_clusters >= len(Zs):
                raise ValueError("k must be in 2..50 and below the number of profiles")
            ag = AgglomerativeClustering(n_clusters=n_clusters).fit(Zs)
            centroids = np.vstack([Zs[ag.labels_ == c].mean(axis=0) for c in range(n_clusters)])
            labels = _nearest(Z, centroids)
        report["k"] = int(centroids.shape[0])
        report["fit_sample"] = len(rows)
        report["noise"] = int((labels == NOISE).sum())
    else:
        raise ValueError(f"unknown method {method!r}")

    sizes = [int((labels == c).sum()) for c in range(len(centroids))]
    # Centroids in original units for the descriptions: the mean of each cluster's members.
    raw = (
        np.vstack(
            [
                X[labels == c].mean(axis=0) if sizes[c] else np.full(X.shape[1], np.nan)
                for c in range(len(centroids))
            ]
        )
        if len(centroids)
        else np.zeros((0, 0))
    )
    descriptions = describe(raw, X, names) if len(centroids) else []
    report["clusters"] = [
        {
            "label": c,
            "size": sizes[c],
            "description": descriptions[c],
            "centroid": {n: _f(v) for n, v in zip(names, raw[c], strict=True)},
        }
        for c in range(len(centroids))
    ]
    report["pca"] = pca_projection(Z, labels, seed=seed)
    model = ClusterModel(
        method,
        scaler,
        np.asarray(centroids).tolist(),
        descriptions,
        sizes,
        eps_used,
        core,
        core_labels,
    )
    return labels, model, report


def _f(v: float) -> float | None:
    v = float(v)
    return round(v, 6) if math.isfinite(v) else None
