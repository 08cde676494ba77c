"""The feature catalogue and the one function that builds a feature matrix as of an instant.

Pure numpy (no Django): the database layer reads events in chunks into `EventRows` and calls
`build_feature_matrix`; attribute analysis, clustering and propensity models all use it, so a
model is trained and scored on features computed the same way.

Leakage: only events with ``occurred_at <= as_of`` are read; everything after the instant is
ignored whatever the caller passes. Labels (`build_labels`) read only the window after it.

Times are float seconds since the Unix epoch (UTC); durations in the matrix are in days.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

DAY = 86400.0
MISSING_CATEGORY = "(missing)"
PURCHASE = "purchase"

Kind = Literal["numeric", "categorical"]
# How a missing value is filled: "zero" (a count or sum with no events is 0), "median" (of the
# profiles in the matrix), "horizon" (a recency with no event is as old as the data: the days
# from the earliest event to the instant, plus one), or for categories the MISSING_CATEGORY
# label (kept as its own level, so "no value" can itself be informative).
Missing = Literal["zero", "median", "horizon", "category"]

# Features whose distribution is heavy-tailed (money and counts): clustering log-scales them.
SKEWED_PREFIXES = ("frequency", "monetary", "avg_order_value", "count.", "window.", "events")


@dataclass(frozen=True)
class FeatureSpec:
    """One attribute a model may use: its key, type, missing-value rule and meaning."""

    key: str
    kind: Kind
    missing: Missing
    description: str

    @property
    def skewed(self) -> bool:
        return self.key.startswith(SKEWED_PREFIXES)


BASE_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("recency_days", "numeric", "horizon", "Days since the last event of any type."),
    FeatureSpec("purchase_recency_days", "numeric", "horizon", "Days since the last purchase."),
    FeatureSpec("frequency", "numeric", "zero", "Number of purchases."),
    FeatureSpec("monetary", "numeric", "zero", "Sum of purchase values."),
    FeatureSpec("avg_order_value", "numeric", "zero", "Mean purchase value (0 without any)."),
    FeatureSpec("tenure_days", "numeric", "zero", "Days since the first event."),
    FeatureSpec("events", "numeric", "zero", "Number of events of any type."),
)

_KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,120}$")


def catalogue(
    *,
    event_types: Iterable[str] = (),
    windows_days: Iterable[int] = (),
    categories: Iterable[str] = (),
    traits: Mapping[str, Kind] | None = None,
) -> list[FeatureSpec]:
    """Every feature available for these event types, windows, categories and declared traits.

    `count.<type>`: events of that type; `window.<type>.<n>d`: events of that type in the n days
    up to the instant; `affinity.<category>`: that category's share of the profile's events
    with a category; `trait.<name>`: a declared trait (numeric: median when missing;
    categorical: its own "(missing)" level).
    """
    specs = list(BASE_FEATURES)
    types = sorted(set(event_types))
    for t in types:
        specs.append(FeatureSpec(f"count.{t}", "numeric", "zero", f"Number of {t} events."))
    for days in sorted({int(d) for d in windows_days}):
        if days <= 0 or days > 3650:
            raise ValueError(f"window of {days} days is outside 1..3650")
        for t in types:
            specs.append(
                FeatureSpec(
                    f"window.{t}.{days}d",
                    "numeric",
                    "zero",
                    f"Number of {t} events in the {days} days up to the instant.",
                )
            )
    for c in sorted(set(categories)):
        specs.append(
            FeatureSpec(f"affinity.{c}", "numeric", "zero", f"Share of categorised events in {c}.")
        )
    for name, kind in sorted((traits or {}).items()):
        specs.append(
            FeatureSpec(
                f"trait.{name}",
                kind,
                "median" if kind == "numeric" else "category",
                f"Declared trait {name}.",
            )
        )
    for spec in specs:
        if not _KEY_RE.match(spec.key):
            raise ValueError(f"feature key {spec.key!r} is not a valid name")
    return specs


@dataclass
class EventRows:
    """Events as parallel arrays (one entry per event)."""

    profile: np.ndarray  # int64 profile ids
    type: np.ndarray  # str
    occurred_at: np.ndarray  # float64 epoch seconds
    value: np.ndarray  # float64, NaN when absent
    name: np.ndarray | None = None  # str or None
    category: np.ndarray | None = None  # str, "" when absent

    @classmethod
    def from_records(cls, rows: Iterable[Mapping[str, Any]]) -> EventRows:
        """From dicts with profile, type, occurred_at and optional value, name, category."""
        rows = list(rows)
        value = [r.get("value") for r in rows]
        return cls(
            profile=np.asarray([int(r["profile"]) for r in rows], dtype=np.int64),
            type=np.asarray([str(r["type"]) for r in rows], dtype=object),
            occurred_at=np.asarray([float(r["occurred_at"]) for r in rows], dtype=np.float64),
            value=np.asarray([np.nan if v is None else float(v) for v in value], dtype=np.float64),
            name=np.asarray([str(r.get("name") or "") for r in rows], dtype=object),
            category=np.asarray([str(r.get("category") or "") for r in rows], dtype=object),
        )

    @classmethod
    def concat(cls, parts: Sequence[EventRows]) -> EventRows:
        if not parts:
            return cls.empty()
        return cls(
            profile=np.concatenate([p.profile for p in parts]),
            type=np.concatenate([p.type for p in parts]),
            occurred_at=np.concatenate([p.occurred_at for p in parts]),
            value=np.concatenate([p.value for p in parts]),
            name=np.concatenate([_or_blank(p.name, len(p)) for p in parts]),
            category=np.concatenate([_or_blank(p.category, len(p)) for p in parts]),
        )

    @classmethod
    def empty(cls) -> EventRows:
        return cls(
            profile=np.zeros(0, np.int64),
            type=np.zeros(0, object),
            occurred_at=np.zeros(0),
            value=np.zeros(0),
            name=np.zeros(0, object),
            category=np.zeros(0, object),
        )

    def __len__(self) -> int:
        return len(self.profile)

    def select(self, mask: np.ndarray) -> EventRows:
        return EventRows(
            profile=self.profile[mask],
            type=self.type[mask],
            occurred_at=self.occurred_at[mask],
            value=self.value[mask],
            name=None if self.name is None else self.name[mask],
            category=None if self.category is None else self.category[mask],
        )

    def matching(
        self, event_type: str, name: str | None = None, category: str | None = None
    ) -> np.ndarray:
        """A mask of the events of this type (and name/category when given)."""
        mask = self.type == event_type
        if name:
            mask &= _or_blank(self.name, len(self)) == name
        if category:
            mask &= _or_blank(self.category, len(self)) == category
        return mask


def _or_blank(arr: np.ndarray | None, n: int) -> np.ndarray:
    return np.full(n, "", dtype=object) if arr is None else arr


@dataclass
class FeatureMatrix:
    """Features of a set of profiles as of one instant.

    `numeric` is float64 (n x p) with missing values already filled by each feature's rule;
    `categorical` is object (n x q) with MISSING_CATEGORY for missing values.
    """

    profile_ids: np.ndarray
    as_of: float
    numeric_names: list[str]
    numeric: np.ndarray
    categorical_names: list[str] = field(default_factory=list)
    categorical: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=object))

    def column(self, name: str) -> np.ndarray:
        if name in self.numeric_names:
            return self.numeric[:, self.numeric_names.index(name)]
        if name in self.categorical_names:
            return self.categorical[:, self.categorical_names.index(name)]
        raise KeyError(name)

    def take(self, rows: np.ndarray) -> FeatureMatrix:
        return FeatureMatrix(
            profile_ids=self.profile_ids[rows],
            as_of=self.as_of,
            numeric_names=list(self.numeric_names),
            numeric=self.numeric[rows],
            categorical_names=list(self.categorical_names),
            categorical=self.categorical[rows] if self.categorical.size else self.categorical,
        )

    def numeric_subset(self, names: Sequence[str]) -> np.ndarray:
        idx = [self.numeric_names.index(n) for n in names]
        return self.numeric[:, idx]


def profiles_seen_by(events: EventRows, as_of: float) -> np.ndarray:
    """Profiles with at least one event at or before the instant (sorted ids)."""
    return np.unique(events.profile[events.occurred_at <= as_of])


def build_feature_matrix(
    events: EventRows,
    profile_ids: Sequence[int] | np.ndarray,
    as_of: float,
    specs: Sequence[FeatureSpec] | None = None,
    *,
    traits: Mapping[int, Mapping[str, Any]] | None = None,
) -> FeatureMatrix:
    """The matrix of `specs` for `profile_ids` as of the instant `as_of` (epoch seconds).

    Events after `as_of` are dropped before anything is computed (no leakage). Profiles without
    events get each feature's missing-value rule. `traits` maps a profile id to its declared
    traits (as stored on the profile; traits have no history, so they are taken as they are).
    """
    specs = list(specs) if specs is not None else list(BASE_FEATURES)
    ids = np.asarray(profile_ids, dtype=np.int64)
    n = len(ids)
    past = events.select(events.occurred_at <= as_of)
    # Map every past event to its row (or drop it when its profile is not asked for).
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pos = np.searchsorted(sorted_ids, past.profile)
    pos_clipped = np.minimum(pos, max(n - 1, 0))
    known = (n > 0) & (sorted_ids[pos_clipped] == past.profile) if n else np.zeros(0, bool)
    past = past.select(known)
    row = order[pos_clipped[known]]

    horizon = (as_of - float(past.occurred_at.min())) / DAY + 1.0 if len(past) else 1.0
    cache: dict[str, np.ndarray] = {}

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(row[mask], minlength=n).astype(np.float64)

    def last_time(mask: np.ndarray) -> np.ndarray:
        out = np.full(n, -np.inf)
        np.maximum.at(out, row[mask], past.occurred_at[mask])
        return out

    def first_time(mask: np.ndarray) -> np.ndarray:
        out = np.full(n, np.inf)
        np.minimum.at(out, row[mask], past.occurred_at[mask])
        return out

    everything = np.ones(len(past), bool)
    purchases = past.type == PURCHASE
    cat = _or_blank(past.category, len(past))
    has_cat = cat != ""
    numeric_names: list[str] = []
    numeric_cols: list[np.ndarray] = []
    categorical_names: list[str] = []
    categorical_cols: list[np.ndarray] = []

    for spec in specs:
        key = spec.key
        col: np.ndarray
        if key == "recency_days":
            col = (as_of - last_time(everything)) / DAY
        elif key == "purchase_recency_days":
            col = (as_of - last_time(purchases)) / DAY
        elif key == "frequency":
            col = count(purchases)
        elif key == "monetary":
            col = _sum_values(row, past.value, purchases, n)
        elif key == "avg_order_value":
            freq = count(purchases)
            money = _sum_values(row, past.value, purchases, n)
            with np.errstate(invalid="ignore", divide="ignore"):
                col = np.where(freq > 0, money / np.maximum(freq, 1), np.nan)
        elif key == "tenure_days":
            col = (as_of - first_time(everything)) / DAY
        elif key == "events":
            col = count(everything)
        elif key.startswith("count."):
            col = count(past.type == key[len("count.") :])
        elif key.startswith("window."):
            etype, days = key[len("window.") :].rsplit(".", 1)
            days_n = int(days.rstrip("d"))
            recent = past.occurred_at > as_of - days_n * DAY
            col = count((past.type == etype) & recent)
        elif key.startswith("affinity."):
            if "affinity_total" not in cache:
                cache["affinity_total"] = count(has_cat)
            total = cache["affinity_total"]
            mine = count(cat == key[len("affinity.") :])
            with np.errstate(invalid="ignore", divide="ignore"):
                col = np.where(total > 0, mine / np.maximum(total, 1), np.nan)
        elif key.startswith("trait."):
            col = _trait_column(ids, traits or {}, key[len("trait.") :], spec.kind)
        else:
            raise ValueError(f"unknown feature {key!r}")

        if spec.kind == "categorical":
            col = np.asarray(
                [MISSING_CATEGORY if v is None or v == "" else str(v) for v in col], dtype=object
            )
            categorical_names.append(key)
            categorical_cols.append(col)
            continue
        col = np.asarray(col, dtype=np.float64)
        col[~np.isfinite(col)] = np.nan
        numeric_names.append(key)
        numeric_cols.append(_fill(col, spec.missing, horizon))

    numeric = np.column_stack(numeric_cols) if numeric_cols else np.zeros((n, 0))
    categorical = (
        np.column_stack(categorical_cols) if categorical_cols else np.zeros((n, 0), dtype=object)
    )
    return FeatureMatrix(ids, as_of, numeric_names, numeric, categorical_names, categorical)


def _sum_values(row: np.ndarray, value: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    v = np.nan_to_num(value[mask], nan=0.0, posinf=0.0, neginf=0.0)
    return np.bincount(row[mask], weights=v, minlength=n)


def _trait_column(
    ids: np.ndarray, traits: Mapping[int, Mapping[str, Any]], name: str, kind: Kind
) -> np.ndarray:
    out = []
    for pid in ids.tolist():
        v = (traits.get(pid) or {}).get(name)
        if kind == "numeric":
            try:
                f = float(v) if v is not None and not isinstance(v, bool) else math.nan
            except (TypeError, ValueError):
                f = math.nan
            out.append(f)
        else:
            out.append(v)
    return np.asarray(out, dtype=np.float64 if kind == "numeric" else object)


def _fill(col: np.ndarray, rule: Missing, horizon: float) -> np.ndarray:
    missing = np.isnan(col)
    if not missing.any():
        return col
    if rule == "zero":
        fill = 0.0
    elif rule == "horizon":
        fill = horizon
    else:  # median
        present = col[~missing]
        fill = float(np.median(present)) if present.size else 0.0
    col = col.copy()
    col[missing] = fill
    return col


def build_labels(
    events: EventRows,
    profile_ids: Sequence[int] | np.ndarray,
    start: float,
    window_days: float,
    *,
    event_type: str,
    name: str | None = None,
    category: str | None = None,
    absence: bool = False,
) -> np.ndarray:
    """1 where the profile has a matching event in (start, start + window_days], else 0.

    `absence=True` inverts it (churn: "no visit in the next 60 days"). Only that window is read.
    """
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    end = start + window_days * DAY
    mask = (
        (events.occurred_at > start)
        & (events.occurred_at <= end)
        & events.matching(event_type, name, category)
    )
    hit = np.isin(np.asarray(profile_ids, dtype=np.int64), np.unique(events.profile[mask]))
    return (~hit if absence else hit).astype(np.int64)


def one_hot(
    fm: FeatureMatrix, levels: Mapping[str, list[str]] | None = None, max_levels: int = 30
) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """Numeric columns plus one-hot categorical columns, with levels fixed by the first call.

    Pass the returned `levels` when encoding a later matrix (validation, scoring) so the columns
    line up; unseen levels get all zeros. At most `max_levels` most frequent levels are kept per
    attribute (the rest fold into no column) so a free-text trait cannot blow the width up.
    """
    levels = dict(levels) if levels is not None else {}
    cols = [fm.numeric]
    names = list(fm.numeric_names)
    for j, cname in enumerate(fm.categorical_names):
        values = fm.categorical[:, j]
        if cname not in levels:
            uniq, counts = np.unique(values.astype(str), return_counts=True)
            keep = uniq[np.argsort(-counts, kind="stable")][:max_levels]
            levels[cname] = sorted(keep.tolist())
        for level in levels[cname]:
            cols.append((values == level).astype(np.float64)[:, None])
            names.append(f"{cname}={level}")
    X = np.hstack(cols) if cols else np.zeros((len(fm.profile_ids), 0))
    return X, names, levels
