"""Value-level helpers shared by the compiler and the validator.

JSON typing without Python's ``bool``-is-``int`` aliasing, strict deep equality, GrowthBook's
padded version strings, ISO-8601 instants and JavaScript-compatible string ordering. Everything here
is pure and cheap; the functions called per evaluation avoid needless allocations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

#: ``$type`` names, as the condition language spells them.
JSON_TYPES = frozenset({"string", "number", "boolean", "null", "object", "array"})

ARRAY_TYPES = (list, tuple)


class PathView:
    """An attribute value that resolves the rest of a dotted path itself.

    A compiled condition walking ``a.b.c.d`` that meets a ``PathView`` at ``b`` calls
    ``view.path_get(("c", "d"))`` once instead of stepping key by key, so a lazily computed value
    (e.g. rolling windows folded from stored buckets, segments/windows.py) can answer from a getter
    specialised for that path. The answer must equal what stepping through the view's keys
    (mapping keys, as :func:`rules.compiler._step` does) would give; a missing key is ``None``.
    """

    __slots__ = ()

    def path_get(self, segments: tuple[str, ...]) -> Any:
        raise NotImplementedError


def json_type(value: Any) -> str:
    """The JSON type name of ``value`` ("unknown" for values JSON cannot hold)."""
    cls = value.__class__
    if cls is str:
        return "string"
    if value is None:
        return "null"
    # bool before int: True is an int in Python but a boolean in JSON.
    if cls is bool:
        return "boolean"
    if cls is int or cls is float:
        return "number"
    if cls is list or cls is tuple:
        return "array"
    if cls is dict:
        return "object"
    # Subclasses (str enums, OrderedDict, ...) take the slow road.
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, ARRAY_TYPES):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "unknown"


def is_number(value: Any) -> bool:
    """True for ints and floats, never for booleans."""
    cls = value.__class__
    if cls is int or cls is float:
        return True
    return isinstance(value, int | float) and not isinstance(value, bool)


def strict_equal(a: Any, b: Any) -> bool:
    """Equality between JSON values: types must agree (``True != 1``), arrays compare item by item
    in order, objects compare key sets and values regardless of key order, and ``1 == 1.0``."""
    ta = json_type(a)
    if ta != json_type(b):
        return False
    if ta == "array":
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta == "object":
        if len(a) != len(b):
            return False
        for key, value in a.items():
            if key not in b or not strict_equal(value, b[key]):
                return False
        return True
    return bool(a == b)


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness (``[]`` and ``{}`` are truthy there), used for ``$exists``."""
    if value is None or value is False:
        return False
    if is_number(value):
        return value == value and value != 0  # NaN is falsy
    if isinstance(value, str):
        return value != ""
    return True


# --- Ordering -------------------------------------------------------------------------------------


def utf16_key(text: str) -> bytes:
    """A sort key that orders strings by UTF-16 code units, as JavaScript's ``<`` does."""
    return text.encode("utf-16-be", "surrogatepass")


# --- Versions -------------------------------------------------------------------------------------

_VERSION_STRIP = re.compile(r"^v|\+.*\Z", re.DOTALL)
_VERSION_SPLIT = re.compile(r"[-.]")


@lru_cache(maxsize=2048)
def padded_version(version: str) -> str:
    """GrowthBook's padded version string: comparing two of these as plain strings orders the
    versions (numeric parts left-padded to width 5, a release sorts after its pre-releases)."""
    parts = _VERSION_SPLIT.split(_VERSION_STRIP.sub("", version))
    if len(parts) == 3:
        # "~" sorts after every other printable ASCII character, so 1.0.0 > 1.0.0-beta.
        parts.append("~")
    return "-".join(p.rjust(5, " ") if p.isascii() and p.isdigit() else p for p in parts)


# --- Dates ----------------------------------------------------------------------------------------

_ISO_INSTANT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?",
    re.ASCII,
)


@lru_cache(maxsize=4096)
def parse_instant(text: str) -> datetime | None:
    """The UTC instant an ISO-8601 date or date-time string denotes, or None if it is not one.

    A date alone means midnight UTC; a date-time without an offset is taken as UTC.
    """
    m = _ISO_INSTANT.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = m.groups()
    try:
        tz: timezone = UTC
        if sign is not None:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        instant = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError:
        return None
    return instant.astimezone(UTC)


def to_instant(value: Any) -> datetime | None:
    """A ``datetime``/``date`` attribute as an aware instant (naive means UTC), else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None
