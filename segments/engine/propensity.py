"""Propensity models: who will do X in the window after a cutoff, validated without leakage.

Two honest validations:

- ``time`` (the default): train on features as of cutoff T1 with labels from (T1, T1+window];
  validate on features as of a later cutoff T2 with labels from (T2, T2+window]. T2 must be at
  least T1+window (the training labels never overlap the validation window) and the data must
  reach T2+window (otherwise the validation labels are incomplete); both are checked.
- ``holdout``: one cutoff; profiles are split at random (stratified) into training and held-out
  profiles, which the model never sees. For targets that use all the data after the cutoff
  ("any purchase after it"), where no later cutoff fits.

Every run fits the same split with a recency-only baseline (logistic regression on log1p of
the days since the last event); a model is activated only when its validation AUC beats the
baseline's (unless forced).

scikit-learn is imported inside the functions that use it: Django loads this module in every
web process (admin -> analysis services), which never fits a model; importing them at the top
cost each web process tens of MB (tests/unit/config/test_web_imports.py).
"""

from __future__ import annotations

import io
import math
import pickle
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .features import (
    DAY,
    EventRows,
    FeatureMatrix,
    FeatureSpec,
    build_feature_matrix,
    build_labels,
    one_hot,
    profiles_seen_by,
)

ModelName = Literal["gradient_boosting", "random_forest", "logistic_regression"]
MODELS: tuple[str, ...] = ("gradient_boosting", "random_forest", "logistic_regression")
BASELINE_FEATURE = "recency_days"


@dataclass(frozen=True)
class Target:
    """An event (type, optional name/category) in the window after the cutoff, or its absence."""

    event_type: str
    window_days: float
    name: str | None = None
    category: str | None = None
    absence: bool = False

    def labels(self, events: EventRows, ids: np.ndarray, cutoff: float) -> np.ndarray:
        return build_labels(
            events,
            ids,
            cutoff,
            self.window_days,
            event_type=self.event_type,
            name=self.name,
            category=self.category,
            absence=self.absence,
        )


def _signed_log1p(X):
    return np.sign(X) * np.log1p(np.abs(X))


def make_model(name: str, seed: int = 0):
    """The estimator for a model name, with defaults meant for any dataset (not tuned to one).

    Gradient boosting: histogram GBM with a modest learning rate, leaves of at least 50
    profiles and early stopping on an inner 10 % (guards against fitting noise on small sets).
    Random forest: 300 trees, leaves of at least 20. Logistic regression: log-scaled and
    standardised inputs (money and counts are heavy-tailed).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if name == "gradient_boosting":
        return HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=300,
            max_leaf_nodes=15,
            min_samples_leaf=50,
            l2_regularization=1.0,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=20,
            random_state=seed,
        )
    if name == "random_forest":
        return RandomForestClassifier(
            n_estimators=300,
            min_samples_leaf=20,
            max_features="sqrt",
            n_jobs=1,
            random_state=seed,
        )
    if name == "logistic_regression":
        return make_pipeline(
            FunctionTransformer(_signed_log1p),
            StandardScaler(),
            LogisticRegression(max_iter=2000, C=1.0),
        )
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def _baseline_model():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(
        FunctionTransformer(_signed_log1p), StandardScaler(), LogisticRegression(max_iter=1000)
    )


@dataclass
class Split:
    """Training and validation matrices with their labels, and how they were made."""

    mode: str
    train: FeatureMatrix
    y_train: np.ndarray
    valid: FeatureMatrix
    y_valid: np.ndarray
    specs: list[FeatureSpec]
    info: dict[str, Any] = field(default_factory=dict)


def time_split(
    events: EventRows,
    specs: list[FeatureSpec],
    target: Target,
    *,
    cutoff: float,
    validation_cutoff: float,
    data_end: float | None = None,
    traits=None,
) -> Split:
    """Features as of `cutoff` with labels after it; validation at `validation_cutoff`."""
    window = target.window_days * DAY
    if validation_cutoff < cutoff + window:
        raise ValueError(
            "validation_cutoff must be at least cutoff + window (the training labels must not "
            "overlap the validation window)"
        )
    end = float(events.occurred_at.max()) if data_end is None else data_end
    if validation_cutoff + window > end:
        raise ValueError(
            "the data ends before the validation window does: labels would be incomplete"
        )
    ids1 = profiles_seen_by(events, cutoff)
    ids2 = profiles_seen_by(events, validation_cutoff)
    train = build_feature_matrix(events, ids1, cutoff, specs, traits=traits)
    valid = build_feature_matrix(events, ids2, validation_cutoff, specs, traits=traits)
    return Split(
        "time",
        train,
        target.labels(events, ids1, cutoff),
        valid,
        target.labels(events, ids2, validation_cutoff),
        list(specs),
        {"cutoff": cutoff, "validation_cutoff": validation_cutoff},
    )


def holdout_split(
    events: EventRows,
    specs: list[FeatureSpec],
    target: Target,
    *,
    cutoff: float,
    holdout: float = 0.3,
    seed: int = 0,
    data_end: float | None = None,
    traits=None,
) -> Split:
    """One cutoff; a stratified random share of the profiles is held out for validation."""
    from sklearn.model_selection import train_test_split

    if not 0.05 <= holdout <= 0.5:
        raise ValueError("holdout must be between 0.05 and 0.5")
    end = float(events.occurred_at.max()) if data_end is None else data_end
    if cutoff + target.window_days * DAY > end + DAY:
        raise ValueError("the data ends before the label window does: labels would be incomplete")
    ids = profiles_seen_by(events, cutoff)
    fm = build_feature_matrix(events, ids, cutoff, specs, traits=traits)
    y = target.labels(events, ids, cutoff)
    _check_classes(y, "labels")
    tr, va = train_test_split(np.arange(len(ids)), test_size=holdout, random_state=seed, stratify=y)
    return Split(
        "holdout",
        fm.take(tr),
        y[tr],
        fm.take(va),
        y[va],
        list(specs),
        {"cutoff": cutoff, "holdout": holdout},
    )


def _check_classes(y: np.ndarray, what: str) -> None:
    positives = int(y.sum())
    if positives < 10 or len(y) - positives < 10:
        raise ValueError(
            f"{what} need at least 10 positives and 10 negatives (got {positives} of {len(y)})"
        )


def _metrics(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    frac, mean = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "positive_rate": float(np.mean(y)),
        "calibration": {
            "mean_predicted": [float(v) for v in mean],
            "observed": [float(v) for v in frac],
        },
    }


@dataclass
class PropensityModel:
    """A fitted model and everything scoring needs (feature specs, one-hot levels)."""

    model_name: str
    estimator: Any
    specs: list[FeatureSpec]
    levels: dict[str, list[str]]
    columns: list[str]

    def score(self, fm: FeatureMatrix) -> np.ndarray:
        X, _, _ = one_hot(fm, self.levels)
        return self.estimator.predict_proba(X)[:, 1]

    def dumps(self) -> bytes:
        """Pickled bytes for storage. Only ever load files this code wrote (pickle runs code)."""
        buf = io.BytesIO()
        pickle.dump(self, buf, protocol=pickle.HIGHEST_PROTOCOL)
        return buf.getvalue()

    @staticmethod
    def loads(data: bytes) -> PropensityModel:
        model = pickle.loads(data)
        if not isinstance(model, PropensityModel):
            raise ValueError("not a propensity model file")
        return model


def train(
    split: Split,
    model_name: str = "gradient_boosting",
    *,
    seed: int = 0,
    importance_sample: int = 5000,
    importance_repeats: int = 5,
    force: bool = False,
) -> tuple[PropensityModel, dict[str, Any]]:
    """Fit the model and the recency baseline on the split; the report for the run record."""
    from sklearn.inspection import permutation_importance

    _check_classes(split.y_train, "training labels")
    _check_classes(split.y_valid, "validation labels")
    X_tr, columns, levels = one_hot(split.train)
    X_va, _, _ = one_hot(split.valid, levels)
    estimator = make_model(model_name, seed)
    started = time.perf_counter()
    estimator.fit(X_tr, split.y_train)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    p_va = estimator.predict_proba(X_va)[:, 1]
    score_s = time.perf_counter() - started
    metrics = _metrics(split.y_valid, p_va)

    if BASELINE_FEATURE not in split.train.numeric_names:
        raise ValueError(f"the baseline needs the {BASELINE_FEATURE} feature")
    base = _baseline_model().fit(split.train.numeric_subset([BASELINE_FEATURE]), split.y_train)
    p_base = base.predict_proba(split.valid.numeric_subset([BASELINE_FEATURE]))[:, 1]
    baseline = _metrics(split.y_valid, p_base)

    rng = np.random.default_rng(seed)
    rows = (
        rng.choice(len(X_va), size=importance_sample, replace=False)
        if len(X_va) > importance_sample
        else np.arange(len(X_va))
    )
    imp = permutation_importance(
        estimator,
        X_va[rows],
        split.y_valid[rows],
        scoring="roc_auc",
        n_repeats=importance_repeats,
        random_state=seed,
        n_jobs=1,
    )
    importances = sorted(
        (
            {"feature": c, "mean": float(m), "std": float(s)}
            for c, m, s in zip(columns, imp.importances_mean, imp.importances_std, strict=True)
        ),
        key=lambda r: -r["mean"],
    )
    beats = metrics["auc"] > baseline["auc"]
    report = {
        "model": model_name,
        "split": {
            "mode": split.mode,
            **split.info,
            "train_profiles": len(split.y_train),
            "valid_profiles": len(split.y_valid),
            "train_positive_rate": float(np.mean(split.y_train)),
        },
        "metrics": metrics,
        "baseline": {"model": "logistic_regression(log1p(recency_days))", **baseline},
        "beats_baseline": bool(beats),
        "activated": bool(beats or force),
        "forced": bool(force and not beats),
        "importances": importances,
        "fit_seconds": fit_s,
        "score_seconds": score_s,
    }
    return PropensityModel(model_name, estimator, split.specs, levels, columns), report


def membership(
    scores: np.ndarray, *, threshold: float | None = None, top_share: float | None = None
) -> np.ndarray:
    """Members by score threshold or by top share (exactly one of the two)."""
    if (threshold is None) == (top_share is None):
        raise ValueError("give exactly one of threshold and top_share")
    if threshold is not None:
        if not 0 <= threshold <= 1:
            raise ValueError("threshold must be in [0, 1]")
        return scores >= threshold
    if not 0 < top_share <= 1:
        raise ValueError("top_share must be in (0, 1]")
    n = math.ceil(len(scores) * top_share)
    members = np.zeros(len(scores), bool)
    if n:
        members[np.argsort(-scores, kind="stable")[:n]] = True
    return members
