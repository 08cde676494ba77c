"""Rolling behaviour windows folded from the aggregates' time buckets at evaluation time.

Pure functions, no Django. Ingestion keeps hour and day buckets on the profile
(``aggregates.buckets``, see segments/aggregates.py); nothing time-relative is stored. Conditions
read ``profile.windows.<window>.<event type>.count|sum|category.<name>``, folded here relative
to the evaluation's ``now``, so a window is right an hour or a week later without any new event:

* ``1d``: the current UTC hour and the 23 before it (hour buckets);
* ``7d`` / ``30d``: today (UTC) and the 6 / 29 days before (day buckets).

Every event type is present in every window (zero when nothing happened), so "fewer than 3
views" (``{"$lt": 3}``) is true for a visitor with none; a category never seen is absent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .aggregates import EVENT_TYPES, day_key, hour_key

#: window name -> (grain, buckets it spans)
WINDOWS = {"1d": ("hours", 24), "7d": ("days", 7), "30d": ("days", 30)}
_GRAIN_STEP = {"hours": timedelta(hours=1), "days": timedelta(days=1)}
_GRAIN_KEY = {"hours": hour_key, "days": day_key}


def _as_datetime(now: Any) -> datetime:
    if isinstance(now, datetime):
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(now), UTC)


def windows_fold(aggregates: Any, now: Any) -> dict[str, dict[str, Any]]:
    """``{"1d"|"7d"|"30d": {event type: {"count", "sum", "category": {name: count}}}}`` at now."""
    moment = _as_datetime(now)
    buckets = aggregates.get("buckets") if isinstance(aggregates, dict) else None
    out: dict[str, dict[str, Any]] = {}
    for name, (grain, span) in WINDOWS.items():
        first = _GRAIN_KEY[grain](moment - _GRAIN_STEP[grain] * (span - 1))
        counts = dict.fromkeys(EVENT_TYPES, 0)
        sums: dict[str, Decimal] = {}
        categories: dict[str, dict[str, int]] = {}
        for key_, bucket in ((buckets or {}).get(grain) or {}).items():
            if key_ < first:
                continue
            for event_type, entry in bucket.items():
                counts[event_type] = counts.get(event_type, 0) + entry.get("n", 0)
                if entry.get("v"):
                    sums[event_type] = sums.get(event_type, Decimal(0)) + Decimal(str(entry["v"]))
                for category, n in (entry.get("c") or {}).items():
                    per_type = categories.setdefault(event_type, {})
                    per_type[category] = per_type.get(category, 0) + n
        out[name] = {
            event_type: {
                "count": n,
                "sum": float(sums.get(event_type, 0)),
                "category": categories.get(event_type, {}),
            }
            for event_type, n in counts.items()
        }
    return out


def windows_next_change(
    aggregates: Any, now: Any, windows: frozenset[str] | set[str] = frozenset(WINDOWS)
) -> float | None:
    """Epoch seconds of the next instant one of `windows` loses a bucket (a condition on it may
    change its answer then), or None when none holds a bucket that will leave it."""
    moment = _as_datetime(now)
    buckets = aggregates.get("buckets") if isinstance(aggregates, dict) else None
    if not buckets:
        return None
    earliest: datetime | None = None
    for name in windows:
        grain, span = WINDOWS[name]
        fmt = "%Y-%m-%dT%H" if grain == "hours" else "%Y-%m-%d"
        reach = _GRAIN_STEP[grain] * span
        for key_ in buckets.get(grain) or {}:
            leaves = datetime.strptime(key_, fmt).replace(tzinfo=UTC) + reach
            if leaves > moment and (earliest is None or leaves < earliest):
                earliest = leaves
    return earliest.timestamp() if earliest is not None else None


def windows_read(fields: set[str]) -> set[str]:
    """The windows a condition reading these attribute paths needs ("profile.windows" alone, or
    an unknown window name, counts as all of them)."""
    needed: set[str] = set()
    for field in fields:
        if field == "profile.windows":
            return set(WINDOWS)
        if field.startswith("profile.windows."):
            name = field.split(".")[2]
            if name not in WINDOWS:
                return set(WINDOWS)
            needed.add(name)
    return needed


def profile_windowed(profile: dict[str, Any], now: Any) -> dict[str, Any]:
    """The profile document with ``windows`` folded at ``now`` (a shallow copy)."""
    return {**profile, "windows": windows_fold(profile.get("aggregates"), now)}
