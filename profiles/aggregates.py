"""Profile behaviour aggregates: pure functions, no Django, no database.

The aggregates are a fold over a profile's events in (occurred_at, event_id) order. Ingestion
applies only the newly stored events of a batch to the stored aggregates (`aggregates_apply`);
the retention purge and identify's merge rebuild them from every stored event
(`aggregates_from_events`, which is the same fold from the empty state). Because it is one fold,
both agree whenever the batches arrive in time order; for events that arrive late (older than
what a profile already had) the incremental result is an approximation, see docs/events.md.

Everything stored is plain JSON: counts, ISO-8601 UTC instants, floats with 2 decimals, a dict of
category scores. Money is summed as Decimal and stored as a float, so the order of additions never
changes a figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

EVENT_TYPES = (
    "page_view",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "search",
    "custom",
)
SESSION_GAP = timedelta(minutes=30)
AFFINITY_WEIGHTS = {"product_view": 1, "add_to_cart": 3, "purchase": 5}
AFFINITY_TOP = 10
CATEGORY_MAX_LENGTH = 100
CENT = Decimal("0.01")

# Keys that a current-format aggregates document always has: one without them (written by an
# older version) is rebuilt from the stored events instead of being updated incrementally.
REQUIRED_KEYS = frozenset(
    {
        "event_count",
        "sessions",
        "first_seen",
        "last_seen",
        "last_event_at",
        "last_purchase_at",
        "frequency",
        "monetary",
        "average_order_value",
        "category_affinities",
        "cart_value",
        "last_add_to_cart_at",
        "purchased_since_last_add_to_cart",
        "buckets",
    }
)
#: Hour buckets kept (the "1d" window: the current hour and the 23 before it) and day buckets kept
#: (the "7d" and "30d" windows: today and the 6 / 29 days before), counted back from the newest
#: event's hour and day. Events are never more than 10 minutes ahead (validation), so every
#: bucket a window folded at "now" could need is kept.
HOUR_BUCKETS = 24
DAY_BUCKETS = 30
#: Categories counted per event type per bucket; a hostile stream of distinct categories cannot
#: grow a profile past this (the weakest, ties the greatest name, is dropped).
BUCKET_CATEGORY_TOP = 10


@dataclass(frozen=True, slots=True)
class AggEvent:
    """What the aggregates need of one event."""

    event_id: str
    type: str
    occurred_at: datetime  # timezone-aware
    value: Decimal | None = None
    category: str | None = None


def empty_aggregates() -> dict[str, Any]:
    agg: dict[str, Any] = {f"{t}_count": 0 for t in EVENT_TYPES}
    agg.update(
        event_count=0,
        sessions=0,
        first_seen=None,
        last_seen=None,
        last_event_at=None,
        last_purchase_at=None,
        frequency=0,
        monetary=0.0,
        average_order_value=0.0,
        category_affinities={},
        cart_value=0.0,
        last_add_to_cart_at=None,
        purchased_since_last_add_to_cart=False,
        buckets={"hours": {"keys": []}, "days": {"keys": []}},
    )
    return agg


def is_current(aggregates: dict[str, Any] | None) -> bool:
    """True when `aggregates` can be updated incrementally (empty counts as current)."""
    return not aggregates or aggregates.keys() >= REQUIRED_KEYS


def category_of(properties: Any) -> str | None:
    """`properties.category` as a short string, or None when absent or not a scalar."""
    if not isinstance(properties, dict):
        return None
    value = properties.get("category")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()[:CATEGORY_MAX_LENGTH]
    return text or None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _money(value: float | int | str | None) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def aggregates_apply(
    aggregates: dict[str, Any] | None, events: Iterable[AggEvent]
) -> dict[str, Any]:
    """The aggregates after `events` (applied in time order); `aggregates` is not modified.

    Callers must pass only events not applied before (ingestion passes the newly inserted rows).
    """
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.event_id))
    agg = empty_aggregates()
    if aggregates:
        agg.update(aggregates)
        agg["category_affinities"] = dict(aggregates.get("category_affinities") or {})
    if not ordered:
        return agg
    first_seen = _instant(agg["first_seen"])
    last_seen = _instant(agg["last_seen"])
    last_purchase = _instant(agg["last_purchase_at"])
    last_add = _instant(agg["last_add_to_cart_at"])
    monetary = _money(agg["monetary"])
    cart = _money(agg["cart_value"])
    affinities: dict[str, int] = agg["category_affinities"]
    counts = {t: agg.get(f"{t}_count", 0) for t in EVENT_TYPES}
    buckets = _buckets_decode(agg.get("buckets"))
    hours, days = buckets["hours"], buckets["days"]
    sessions = agg["sessions"]
    frequency = agg["frequency"]
    for event in ordered:
        at = event.occurred_at
        counts[event.type] = counts.get(event.type, 0) + 1
        # A session starts with the first event, or after more than 30 minutes of silence. A late
        # event (older than the latest one seen) never opens a session: see docs/events.md.
        if last_seen is None or at - last_seen > SESSION_GAP:
            sessions += 1
        if first_seen is None or at < first_seen:
            first_seen = at
        if last_seen is None or at > last_seen:
            last_seen = at
        value = event.value.quantize(CENT) if event.value is not None else Decimal(0)
        if event.type == "purchase":
            frequency += 1
            monetary += value
            if last_purchase is None or at >= last_purchase:
                last_purchase = at
                cart = Decimal(0)
        elif event.type in ("add_to_cart", "remove_from_cart"):
            # Cart lines older than the last purchase belong to a cart already closed.
            if last_purchase is None or at > last_purchase:
                cart = cart + value if event.type == "add_to_cart" else max(cart - value, 0)
            if event.type == "add_to_cart" and (last_add is None or at > last_add):
                last_add = at
        weight = AFFINITY_WEIGHTS.get(event.type)
        category = event.category if weight else None
        _bucket_add(hours, hour_key(at), event.type, value, category)
        _bucket_add(days, day_key(at), event.type, value, category)
        if weight and event.category:
            affinities[event.category] = affinities.get(event.category, 0) + weight
            if len(affinities) > AFFINITY_TOP:
                # Drop the weakest (ties: the greatest name), which may be the one just added.
                weakest = max(affinities, key=lambda c: (-affinities[c], c))
                del affinities[weakest]
    for event_type, n in counts.items():
        agg[f"{event_type}_count"] = n
    agg.update(
        event_count=sum(counts.values()),
        sessions=sessions,
        first_seen=_iso(first_seen),
        last_seen=_iso(last_seen),
        last_event_at=_iso(last_seen),
        last_purchase_at=_iso(last_purchase) if last_purchase else None,
        frequency=frequency,
        monetary=float(monetary),
        average_order_value=float((monetary / frequency).quantize(CENT)) if frequency else 0.0,
        category_affinities=dict(sorted(affinities.items(), key=lambda kv: (-kv[1], kv[0]))),
        cart_value=float(cart),
        last_add_to_cart_at=_iso(last_add) if last_add else None,
        purchased_since_last_add_to_cart=bool(
            last_add and last_purchase and last_purchase >= last_add
        ),
    )
    agg["buckets"] = buckets_encode(_buckets_pruned(buckets, last_seen))
    return agg


def hour_key(moment: datetime) -> str:
    """The hour bucket of an instant: ``"2026-12-06T19"`` (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def day_key(moment: datetime) -> str:
    """The day bucket of an instant: ``"2026-12-06"`` (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def _buckets_decode(stored: Any) -> dict[str, dict[str, Any]]:
    """The stored (column) form as ``{grain: {bucket key: {type: {"n", "v", "c"}}}}``, a fresh
    copy; anything malformed reads as no buckets."""
    out: dict[str, dict[str, Any]] = {"hours": {}, "days": {}}
    if not isinstance(stored, dict):
        return out
    for grain in ("hours", "days"):
        column = stored.get(grain)
        keys = column.get("keys") if isinstance(column, dict) else None
        if not isinstance(keys, list):
            continue
        buckets: dict[str, dict[str, Any]] = {k: {} for k in keys}
        for event_type, series in column.items():
            if event_type == "keys" or not isinstance(series, dict):
                continue
            counts, sums = series.get("n") or [], series.get("v") or []
            for index, key_ in enumerate(keys):
                if index < len(counts) and counts[index]:
                    buckets[key_][event_type] = {"n": counts[index], "v": sums[index]}
            flat = series.get("c") or []
            for j in range(0, len(flat) - 2, 3):
                category, index, n = flat[j], flat[j + 1], flat[j + 2]
                if isinstance(index, int) and 0 <= index < len(keys):
                    entry = buckets[keys[index]].get(event_type)
                    if entry is not None:
                        entry.setdefault("c", {})[category] = n
        out[grain] = buckets
    return out


def buckets_encode(buckets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The stored form: per grain, the sorted bucket keys and, per event type, aligned columns
    (``n`` counts, ``v`` sums) plus ``c``, a flat ``[category, bucket index, count, ...]`` list.

    Columns, not an object per bucket: the decision path parses the profile document on every
    decision, and a handful of number arrays parse far faster than dozens of small objects (and
    stay under the container count of its fast JSON path, personalization/visitors.py).
    """
    out: dict[str, Any] = {}
    for grain in ("hours", "days"):
        grain_buckets = buckets[grain]
        keys = sorted(grain_buckets)
        column: dict[str, Any] = {"keys": keys}
        for event_type in sorted({t for bucket in grain_buckets.values() for t in bucket}):
            counts: list[int] = []
            sums: list[float] = []
            flat: list[Any] = []
            for index, key_ in enumerate(keys):
                entry = grain_buckets[key_].get(event_type)
                if entry is None:
                    counts.append(0)
                    sums.append(0.0)
                    continue
                counts.append(entry["n"])
                sums.append(entry["v"])
                for category, n in sorted((entry.get("c") or {}).items()):
                    flat.extend((category, index, n))
            series: dict[str, Any] = {"n": counts, "v": sums}
            if flat:
                series["c"] = flat
            column[event_type] = series
        out[grain] = column
    return out


def _bucket_add(
    buckets: dict[str, Any], key_: str, event_type: str, value: Decimal, category: str | None
) -> None:
    bucket = buckets.get(key_)
    if bucket is None:
        bucket = buckets[key_] = {}
    entry = bucket.get(event_type)
    if entry is None:
        entry = bucket[event_type] = {"n": 0, "v": 0.0}
    entry["n"] += 1
    if value:
        entry["v"] = float(_money(entry["v"]) + value)
    if category:
        categories = entry.get("c")
        if categories is None:
            categories = entry["c"] = {}
        categories[category] = categories.get(category, 0) + 1
        if len(categories) > BUCKET_CATEGORY_TOP:
            weakest = max(categories, key=lambda c: (-categories[c], c))
            del categories[weakest]


def _buckets_pruned(buckets: dict[str, Any], newest: datetime | None) -> dict[str, Any]:
    """Only the buckets a window can still need, counted back from the newest event."""
    if newest is None:
        return buckets
    first_hour = hour_key(newest - timedelta(hours=HOUR_BUCKETS - 1))
    first_day = day_key(newest - timedelta(days=DAY_BUCKETS - 1))
    return {
        "hours": {k: v for k, v in sorted(buckets["hours"].items()) if k >= first_hour},
        "days": {k: v for k, v in sorted(buckets["days"].items()) if k >= first_day},
    }


def aggregates_from_events(events: Iterable[AggEvent]) -> dict[str, Any]:
    """The aggregates of a profile rebuilt from all its events (the same fold from empty)."""
    return aggregates_apply(None, events)
