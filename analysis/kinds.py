"""The model segment kinds (issue #16) on the segments kinds registry: propensity, cluster and
the per-cluster member segments a cluster run creates. Validation here, work in
analysis.model_segments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from profiles.models import EventType
from segments.engine.features import BASE_FEATURES, spec_for_key
from segments.engine.propensity import MODELS
from segments.kinds import ConfigError, KindResult, Progress, SegmentKindSpec, register

from . import model_segments
from .selectors import trait_kinds

DEFAULT_FEATURES = [s.key for s in BASE_FEATURES]
DEFAULT_CLUSTER_FEATURES = ["purchase_recency_days", "frequency", "monetary"]


def _object(config: Any, path: str = "config") -> dict:
    if not isinstance(config, dict):
        raise ConfigError(path, "Must be an object.")
    return config


def _unknown(config: dict, allowed: set[str], path: str = "config") -> None:
    extra = sorted(set(config) - allowed)
    if extra:
        raise ConfigError(f"{path}.{str(extra[0])[:50]}", "Unknown setting.")


def _number(config, name, default, lo, hi, *, integer=False):
    value = config.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (integer and not isinstance(value, int))
    ):
        raise ConfigError(f"config.{name}", f"A {'whole ' if integer else ''}number.")
    if not lo <= value <= hi:
        raise ConfigError(f"config.{name}", f"Between {lo} and {hi}.")
    return value


def _features(config, default, *, numeric_only=False) -> list[str]:
    features = config.get("features", default)
    if not isinstance(features, list) or not 1 <= len(features) <= 60:
        raise ConfigError("config.features", "A list of 1 to 60 feature names.")
    kinds = trait_kinds()
    for index, key in enumerate(features):
        try:
            spec = spec_for_key(key, kinds)
        except ValueError as exc:
            raise ConfigError(f"config.features[{index}]", str(exc)) from None
        if numeric_only and spec.kind != "numeric":
            raise ConfigError(f"config.features[{index}]", "Clustering takes numeric features.")
    if len(set(features)) != len(features):
        raise ConfigError("config.features", "Each feature at most once.")
    return list(features)


def _as_of(config) -> str | None:
    value = config.get("as_of")
    if value in (None, ""):
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError("config.as_of", "An ISO 8601 date-time.") from None
    if parsed.tzinfo is None:
        raise ConfigError("config.as_of", "Give a time zone (e.g. Z).")
    return parsed.isoformat()


class PropensityKind(SegmentKindSpec):
    key = "propensity"
    label = "Propensity model"

    def clean_config(self, config: dict[str, Any]) -> dict[str, Any]:
        config = _object(config)
        _unknown(
            config,
            {
                "target",
                "model",
                "features",
                "validation",
                "membership",
                "force",
                "retrain_hours",
                "as_of",
            },
        )
        target = _object(config.get("target"), "config.target")
        _unknown(
            target, {"event_type", "window_days", "name", "category", "absence"}, "config.target"
        )
        if target.get("event_type") not in EventType.values:
            raise ConfigError("config.target.event_type", f"One of {', '.join(EventType.values)}.")
        window = target.get("window_days")
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 730:
            raise ConfigError("config.target.window_days", "Whole days between 1 and 730.")
        for name, limit in (("name", 200), ("category", 100)):
            value = target.get(name, "")
            if not isinstance(value, str) or len(value) > limit:
                raise ConfigError(f"config.target.{name}", f"Text of at most {limit} characters.")
        if not isinstance(target.get("absence", False), bool):
            raise ConfigError("config.target.absence", "true or false.")
        model = config.get("model", "gradient_boosting")
        if model not in MODELS:
            raise ConfigError("config.model", f"One of {', '.join(MODELS)}.")
        features = _features(config, DEFAULT_FEATURES)
        if "recency_days" not in features:
            raise ConfigError("config.features", "Must include recency_days (the baseline).")
        validation = config.get("validation", "time")
        if validation not in ("time", "holdout"):
            raise ConfigError("config.validation", "time (a later cutoff) or holdout.")
        rule = _object(config.get("membership", {"top_share": 0.2}), "config.membership")
        _unknown(rule, {"threshold", "top_share"}, "config.membership")
        if len(rule) != 1:
            raise ConfigError("config.membership", "Exactly one of threshold and top_share.")
        if "threshold" in rule:
            _number(rule, "threshold", None, 0.0, 1.0)
        else:
            value = rule["top_share"]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (0 < value <= 1)
            ):
                raise ConfigError("config.membership.top_share", "Above 0, at most 1.")
        if not isinstance(config.get("force", False), bool):
            raise ConfigError("config.force", "true or false.")
        return {
            "target": {
                "event_type": target["event_type"],
                "window_days": window,
                "name": target.get("name", ""),
                "category": target.get("category", ""),
                "absence": bool(target.get("absence", False)),
            },
            "model": model,
            "features": features,
            "validation": validation,
            "membership": dict(rule),
            "force": bool(config.get("force", False)),
            "retrain_hours": _number(config, "retrain_hours", 24, 1, 24 * 90, integer=True),
            "as_of": _as_of(config),
        }

    def compute(self, segment, *, progress: Progress) -> KindResult:
        return model_segments.propensity_compute(segment, progress=progress)


class ClusterKind(SegmentKindSpec):
    key = "cluster"
    label = "Clustering"

    def clean_config(self, config: dict[str, Any]) -> dict[str, Any]:
        config = _object(config)
        _unknown(
            config,
            {
                "features",
                "method",
                "scaling",
                "k_range",
                "k",
                "eps",
                "min_samples",
                "retrain_hours",
                "as_of",
            },
        )
        method = config.get("method", "kmeans")
        if method not in ("kmeans", "minibatch", "dbscan", "agglomerative"):
            raise ConfigError("config.method", "kmeans, minibatch, dbscan or agglomerative.")
        scaling = config.get("scaling", "standard")
        if scaling not in ("standard", "minmax"):
            raise ConfigError("config.scaling", "standard or minmax.")
        k_range = config.get("k_range", [2, 10])
        if (
            not isinstance(k_range, list)
            or len(k_range) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in k_range)
            or not 2 <= k_range[0] <= k_range[1] <= 20
        ):
            raise ConfigError("config.k_range", "[min, max] with 2 <= min <= max <= 20.")
        k = config.get("k")
        if k is not None:
            k = _number(config, "k", None, 2, 20, integer=True)
        if method == "agglomerative" and k is None:
            k = 4
        return {
            "features": _features(config, DEFAULT_CLUSTER_FEATURES, numeric_only=True),
            "method": method,
            "scaling": scaling,
            "k_range": k_range,
            "k": k,
            "eps": float(_number(config, "eps", 0.5, 0.01, 100)),
            "min_samples": _number(config, "min_samples", 10, 1, 1000, integer=True),
            "retrain_hours": _number(config, "retrain_hours", 24, 1, 24 * 90, integer=True),
            "as_of": _as_of(config),
        }

    def compute(self, segment, *, progress: Progress) -> KindResult:
        return model_segments.cluster_compute(segment, progress=progress)


class ClusterMemberKind(SegmentKindSpec):
    key = "cluster_member"
    label = "Cluster (created by a cluster segment)"

    def clean_config(self, config: dict[str, Any]) -> dict[str, Any]:
        config = _object(config)
        _unknown(config, {"parent", "label"})
        if not isinstance(config.get("parent"), str) or not config["parent"]:
            raise ConfigError("config.parent", "The key of a cluster segment.")
        label = config.get("label")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < 50:
            raise ConfigError("config.label", "A cluster number (0-49).")
        return {"parent": config["parent"], "label": label}

    def compute(self, segment, *, progress: Progress) -> KindResult:
        return model_segments.cluster_member_compute(segment, progress=progress)


register(PropensityKind())
register(ClusterKind())
register(ClusterMemberKind())
