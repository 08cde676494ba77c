"""Relative instants: ``{"$gte": {"$ago": "30m"}}`` and ``{"$lte": {"$ahead": "3d"}}``.

A relative operand names an instant measured from the evaluation's ``now`` - the moment a decision
is taken or a segment evaluated, never the moment the condition was compiled. Durations are parsed
once, at compile time; evaluation reads ``now`` from a clock (a context variable) and does one
subtraction and one comparison.

The clock can also collect *the next instant at which a time-dependent clause could change its
answer* for the values it saw: a ``$ago``/``$ahead`` clause on an attribute holding instant ``v``
with offset ``d`` flips only when ``now`` crosses ``v ± d``. Short-circuited clauses need not be
collected: the answer depends only on the clauses that were evaluated, and none of those changes
before the earliest of their crossings. Mosaic schedules a profile's re-evaluation at that instant
(see docs/conditions.md).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import UTC, date, datetime
from time import time
from typing import Any

from .values import parse_instant

#: Relative-instant keys allowed as the operand of ``$gt/$gte/$lt/$lte``.
RELATIVE = frozenset({"$ago", "$ahead"})

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}
#: Longer offsets are refused at save: ten years back or ahead is already beyond any data kept.
MAX_OFFSET_SECONDS = 3650 * 86400

_PART = re.compile(r"(\d{1,9})([smhdw])", re.ASCII)
_DURATION = re.compile(r"(?:\d{1,9}[smhdw]){1,5}", re.ASCII)

#: A number above this is taken as epoch milliseconds (as JavaScript's Date.now() writes them);
#: as seconds it would be past the year 5000.
EPOCH_MS_THRESHOLD = 1e11

#: The next-change instant is recorded a millisecond after the crossing itself, so that a
#: re-evaluation at that instant sees the new answer whatever the operator's strictness.
CROSSING_MARGIN = 0.001


class DurationError(ValueError):
    """A duration string that is not ``<digits><unit>`` parts, or beyond MAX_OFFSET_SECONDS."""


def parse_duration(text: Any) -> int:
    """Seconds in a duration such as ``"30m"``, ``"1h30m"``, ``"2w"``; raises DurationError."""
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        raise DurationError(
            'needs a duration such as "30m", "12h", "7d" or "1h30m" '
            "(units s, m, h, d, w; whole numbers)"
        )
    seconds = sum(int(n) * UNITS[unit] for n, unit in _PART.findall(text))
    if seconds > MAX_OFFSET_SECONDS:
        raise DurationError("is too long (at most 3650 days)")
    return seconds


def describe_duration(text: str) -> str:
    """``"1h30m"`` reads "1 hour 30 minutes"."""
    words = []
    for n, unit in _PART.findall(text):
        name = UNIT_NAMES[unit]
        words.append(f"{int(n)} {name}{'' if int(n) == 1 else 's'}")
    return " ".join(words)


def relative_offset(operand: Any) -> int | None:
    """Signed seconds from ``now`` of a relative operand (``$ago`` negative), or None when the
    operand is not a well-formed relative instant."""
    if not isinstance(operand, dict) or len(operand) != 1:
        return None
    ((key, text),) = operand.items()
    if key not in RELATIVE:
        return None
    try:
        seconds = parse_duration(text)
    except DurationError:
        return None
    return -seconds if key == "$ago" else seconds


# --- The clock ------------------------------------------------------------------------------------


class Clock:
    """The evaluation's ``now`` (epoch seconds) and, when collecting, the earliest crossing seen.

    One clock may serve a whole batch of evaluations at the same ``now``: reset ``next_change``
    to None before each profile. Thresholds (``now + offset`` as an aware datetime) are computed
    once per offset and clock.
    """

    __slots__ = ("collect", "next_change", "now", "thresholds")

    def __init__(self, now: float, collect: bool = False) -> None:
        self.now = now
        self.collect = collect
        self.next_change: float | None = None
        self.thresholds: dict[int, datetime] = {}

    def threshold(self, offset: int) -> datetime:
        instant = self.thresholds.get(offset)
        if instant is None:
            instant = self.thresholds[offset] = datetime.fromtimestamp(self.now + offset, UTC)
        return instant

    def note(self, crossing: float) -> None:
        # A crossing at now itself counts: "value >= now - d" with value exactly now - d is true
        # now and false just after.
        if crossing >= self.now:
            crossing += CROSSING_MARGIN
            if self.next_change is None or crossing < self.next_change:
                self.next_change = crossing


CLOCK: ContextVar[Clock | None] = ContextVar("mosaic_rules_clock", default=None)


def as_epoch(now: Any) -> float:
    """``now`` as epoch seconds: a number as given, a datetime (naive means UTC) converted."""
    if now.__class__ is float or now.__class__ is int:
        return float(now)
    if isinstance(now, datetime):
        return (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).timestamp()
    raise TypeError("now must be epoch seconds or a datetime")


class evaluation_clock:
    """Evaluate compiled conditions at ``now`` (called inside without ``now=``) and collect the
    earliest instant at which any time-dependent clause they evaluated could change its answer
    (``clock.next_change``, epoch seconds, None when none can)."""

    __slots__ = ("clock", "token")

    def __init__(self, now: Any = None) -> None:
        self.clock = Clock(time() if now is None else as_epoch(now), collect=True)

    def __enter__(self) -> Clock:
        self.token = CLOCK.set(self.clock)
        return self.clock

    def __exit__(self, *exc: object) -> None:
        CLOCK.reset(self.token)


# --- Instants held by attributes -----------------------------------------------------------------


def instant_seconds(value: Any) -> float | None:
    """Epoch seconds of an attribute holding an instant, or None.

    ISO-8601 strings (as the aggregates store them; a naive time is UTC), numbers as epoch seconds
    (above 1e11, epoch milliseconds), ``datetime``/``date`` objects. Booleans are not instants.
    """
    cls = value.__class__
    if cls is str:
        # Extended ISO dates only ("2026-12-06..."): the C parser is much faster than the
        # language's regex, and on this shape both accept the same strings.
        if len(value) >= 10 and value[4] == "-" and value[7] == "-":
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                return parsed.timestamp()
        instant = parse_instant(value)
        return instant.timestamp() if instant is not None else None
    if cls is int or cls is float:
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return value / 1000.0 if abs(value) > EPOCH_MS_THRESHOLD else float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date) and not isinstance(value, bool):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    return None
