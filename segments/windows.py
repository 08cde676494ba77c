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

from bisect import bisect_left
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .aggregates import EVENT_TYPES, day_key, hour_key

#: window name -> (grain, buckets it spans)
WINDOWS = {"1d": ("hours", 24), "7d": ("days", 7), "30d": ("days", 30)}
_GRAIN_STEP = {"hours": timedelta(hours=1), "days": timedelta(days=1)}
_GRAIN_KEY = {"hours": hour_key, "days": day_key}
_TYPES = frozenset(EVENT_TYPES)


def _as_datetime(now: Any) -> datetime:
    if isinstance(now, datetime):
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(now), UTC)


def _epoch(now: Any) -> float:
    return _as_datetime(now).timestamp() if isinstance(now, datetime) else float(now)


_UNITS = {name: 3600 if grain == "hours" else 86400 for name, (grain, _) in WINDOWS.items()}
#: (window, hour or day index of now) -> oldest bucket key inside; bounded (cleared when full).
_FIRSTS: dict[tuple[str, int], str] = {}


def _first_key(name: str, unit_index: int) -> str:
    """The oldest bucket key inside window `name` when now lies in hour/day `unit_index`."""
    grain, span = WINDOWS[name]
    start = datetime.fromtimestamp((unit_index - (span - 1)) * _UNITS[name], UTC)
    if len(_FIRSTS) > 1024:
        _FIRSTS.clear()
    first = _FIRSTS[(name, unit_index)] = _GRAIN_KEY[grain](start)
    return first


class Window(Mapping):
    """One window at one instant: ``{event type: {"count", "sum", "category"}}``, each type
    summed from its bucket columns on first access (a condition reads one or two of them)."""

    __slots__ = ("_cache", "_column", "_start")

    def __init__(self, column: dict[str, Any], start: int) -> None:
        self._column = column  # the grain's stored columns (segments/aggregates.py)
        self._start = start  # index of the oldest bucket inside the window
        self._cache: dict[str, dict[str, Any]] = {}

    def get(self, event_type: Any, default: Any = None) -> Any:
        folded = self._cache.get(event_type)
        if folded is not None:
            return folded
        if event_type not in _TYPES:
            return default
        series = self._column.get(event_type)
        start = self._start
        categories: dict[str, int] = {}
        if isinstance(series, dict):
            counts = series.get("n") or ()
            count = sum(counts[start:])
            # Each bucket holds cents exactly (2 decimals); rounding the float sum back to
            # cents is exact for any realistic total (below 2**53 cents).
            total = round(sum((series.get("v") or ())[start:]), 2) if count else 0.0
            flat = series.get("c")
            if flat:
                for j in range(0, len(flat) - 2, 3):
                    if flat[j + 1] >= start:
                        name = flat[j]
                        categories[name] = categories.get(name, 0) + flat[j + 2]
        else:
            count, total = 0, 0.0
        folded = self._cache[event_type] = {
            "count": count,
            "sum": total,
            "category": categories,
        }
        return folded

    def __getitem__(self, event_type: str) -> dict[str, Any]:
        folded = self.get(event_type)
        if folded is None:
            raise KeyError(event_type)
        return folded

    def __iter__(self):
        return iter(EVENT_TYPES)

    def __len__(self) -> int:
        return len(EVENT_TYPES)


_NO_BUCKETS: dict[str, Any] = {"keys": []}


class Windows(Mapping):
    """``profile.windows`` at one instant: ``{"1d"|"7d"|"30d": Window}``, folded lazily from the
    aggregates' buckets, so a decision or an evaluation pays only for the window and event type
    its conditions read."""

    __slots__ = ("_buckets", "_cache", "_now")

    def __init__(self, aggregates: Any, now: Any) -> None:
        buckets = aggregates.get("buckets") if isinstance(aggregates, dict) else None
        self._buckets = buckets if isinstance(buckets, dict) else {}
        self._now = _epoch(now)
        self._cache: dict[str, Window] = {}

    def get(self, name: Any, default: Any = None) -> Any:
        # The path a compiled condition takes (`value.get(segment)`): kept free of exceptions.
        window = self._cache.get(name)
        if window is not None:
            return window
        unit = _UNITS.get(name)
        if unit is None:
            return default
        index = int(self._now // unit)
        first = _FIRSTS.get((name, index))
        if first is None:
            first = _first_key(name, index)
        column = self._buckets.get(WINDOWS[name][0])
        keys = column.get("keys") if isinstance(column, dict) else None
        if not isinstance(keys, list):
            column, keys = _NO_BUCKETS, []
        window = self._cache[name] = Window(column, bisect_left(keys, first))
        return window

    def __getitem__(self, name: str) -> Window:
        window = self.get(name)
        if window is None:
            raise KeyError(name)
        return window

    def __iter__(self):
        return iter(WINDOWS)

    def __len__(self) -> int:
        return len(WINDOWS)


def windows_fold(aggregates: Any, now: Any) -> dict[str, dict[str, Any]]:
    """Every window, every type, as plain dicts (``Windows`` materialised): for export and tests.
    ``{"1d"|"7d"|"30d": {event type: {"count", "sum", "category": {name: count}}}}``."""
    view = Windows(aggregates, now)
    return {name: {t: dict(view[name][t]) for t in EVENT_TYPES} for name in WINDOWS}


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
        column = buckets.get(grain)
        keys = column.get("keys") if isinstance(column, dict) else None
        for key_ in keys if isinstance(keys, list) else ():
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
    """The profile document with ``windows`` at ``now`` (a shallow copy; folded on access).
    Stored documents never hold ``windows``; one that does (a preview's typed profile) is kept."""
    if "windows" in profile:
        return profile
    return {**profile, "windows": Windows(profile.get("aggregates"), now)}
