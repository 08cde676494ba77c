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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from profiles.aggregates import EVENT_TYPES, day_key, hour_key
from rules import PathView

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
_EMPTY: dict[str, Any] = {}


class Windows(Mapping, PathView):
    """``profile.windows`` at one instant: ``{"1d"|"7d"|"30d": Window}``, folded lazily from the
    aggregates' buckets, so a decision or an evaluation pays only for the window and event type
    its conditions read.

    A compiled condition reading ``profile.windows.<w>.<type>.count|sum|category.<name>`` does
    not go through the ``Window`` views: it hands the path to ``path_get`` (rules.PathView), which
    answers from a getter compiled once per path that reads only that type's columns of that
    grain and sums the buckets inside the window (see ``_path_getter``)."""

    __slots__ = ("_buckets", "_cache", "_now")

    def __init__(self, aggregates: Any, now: Any) -> None:
        # Built once per profile per evaluation: kept to a few attribute stores.
        buckets = aggregates.get("buckets") if isinstance(aggregates, dict) else None
        self._buckets = buckets if isinstance(buckets, dict) else _EMPTY
        self._now = now if now.__class__ is float else _epoch(now)
        self._cache: dict[str, Window] | None = None

    def path_get(self, segments: tuple[str, ...]) -> Any:
        getter = _GETTERS.get(segments)
        if getter is None:
            getter = _path_getter(segments)
        return getter(self)

    def get(self, name: Any, default: Any = None) -> Any:
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        else:
            window = cache.get(name)
            if window is not None:
                return window
        unit = _UNITS.get(name)
        if unit is None:
            return default
        column = self._buckets.get(WINDOWS[name][0])
        keys = column.get("keys") if isinstance(column, dict) else None
        if not isinstance(keys, list):
            column, keys = _NO_BUCKETS, []
        window = cache[name] = Window(column, bisect_left(keys, _first_at(name, self._now)))
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


def _first_at(name: str, now: float) -> str:
    """The oldest bucket key inside window `name` at epoch `now`."""
    index = int(now // _UNITS[name])
    first = _FIRSTS.get((name, index))
    return first if first is not None else _first_key(name, index)


class _Cutoff:
    """`_first_at(name, now)` remembered for the last `now` seen: an evaluation batch shares one
    clock, so the key is computed once per batch, not once per profile."""

    __slots__ = ("last", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.last: tuple[float, str] = (float("nan"), "")

    def __call__(self, now: float) -> str:
        last_now, first = self.last  # one tuple: consistent under concurrent callers
        if last_now != now:
            first = _first_at(self.name, now)
            self.last = (now, first)
        return first


# The getters below inline the same checks as `Windows.get` (a grain without a list of keys reads
# as no buckets: count 0, sum 0.0, category absent); they run once per profile and condition.


def _count_getter(name: str, event_type: str) -> Callable[[Windows], Any]:
    grain, cutoff = WINDOWS[name][0], _Cutoff(name)

    def window_count(view: Windows) -> int:
        column = view._buckets.get(grain)
        if not isinstance(column, dict):
            return 0
        keys, series = column.get("keys"), column.get(event_type)
        if not isinstance(keys, list) or not isinstance(series, dict):
            return 0
        return sum((series.get("n") or ())[bisect_left(keys, cutoff(view._now)) :])

    return window_count


def _sum_getter(name: str, event_type: str) -> Callable[[Windows], Any]:
    grain, cutoff = WINDOWS[name][0], _Cutoff(name)

    def window_sum(view: Windows) -> float:
        column = view._buckets.get(grain)
        if not isinstance(column, dict):
            return 0.0
        keys, series = column.get("keys"), column.get(event_type)
        if not isinstance(keys, list) or not isinstance(series, dict):
            return 0.0
        start = bisect_left(keys, cutoff(view._now))
        if not sum((series.get("n") or ())[start:]):
            return 0.0
        return round(sum((series.get("v") or ())[start:]), 2)  # cents: see Window.get

    return window_sum


def _category_getter(name: str, event_type: str, category: str) -> Callable[[Windows], Any]:
    grain, cutoff = WINDOWS[name][0], _Cutoff(name)

    def window_category(view: Windows) -> int | None:
        column = view._buckets.get(grain)
        if not isinstance(column, dict):
            return None
        series = column.get(event_type)
        if not isinstance(series, dict):
            return None
        flat = series.get("c")
        # Most profiles never saw this category: one C-level scan answers for them.
        if not isinstance(flat, list) or category not in flat:
            return None
        keys = column.get("keys")
        if not isinstance(keys, list):
            return None
        start = bisect_left(keys, cutoff(view._now))
        total, seen = 0, False
        for j in range(0, len(flat) - 2, 3):
            if flat[j] == category and flat[j + 1] >= start:
                total += flat[j + 2]
                seen = True
        return total if seen else None

    return window_category


def _walk_views(view: Windows, segments: tuple[str, ...]) -> Any:
    """Any other path below ``profile.windows``, stepped through the lazy views (every value
    there is a mapping, an int or a float: a step into a number is None, as in rules)."""
    value: Any = view
    for segment in segments:
        if not isinstance(value, Mapping):
            return None
        value = value.get(segment)
    return value


#: path below ``profile.windows`` -> its getter; bounded (cleared when full), like _FIRSTS.
_GETTERS: dict[tuple[str, ...], Callable[[Windows], Any]] = {}


def _path_getter(segments: tuple[str, ...]) -> Callable[[Windows], Any]:
    getter: Callable[[Windows], Any]
    if len(segments) >= 3 and segments[0] in WINDOWS and segments[1] in _TYPES:
        name, event_type, measure = segments[:3]
        if measure == "count" and len(segments) == 3:
            getter = _count_getter(name, event_type)
        elif measure == "sum" and len(segments) == 3:
            getter = _sum_getter(name, event_type)
        elif measure == "category" and len(segments) == 4:
            getter = _category_getter(name, event_type, segments[3])
        else:
            getter = partial(_walk_views_rev, segments)
    else:
        getter = partial(_walk_views_rev, segments)
    if len(_GETTERS) > 1024:
        _GETTERS.clear()
    _GETTERS[segments] = getter
    return getter


def _walk_views_rev(segments: tuple[str, ...], view: Windows) -> Any:
    return _walk_views(view, segments)


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
