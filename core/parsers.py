"""The API's JSON parser: DRF's JSONParser contract, parsed by orjson.

The events endpoint parses up to 500 events per request, and the standard library's decoder was
a measurable share of its time (benchmarks/bench_ingest.py). orjson is strict like DRF's default
(no NaN or Infinity) and reports malformed input the same way: a ParseError, answered 400. It
also refuses what is not Unicode (a lone surrogate escape such as "\\ud800"), which the standard
library lets through.

One difference would lose data silently: orjson reads an integer beyond 64 bits as a float. A
body with a run of 19 or more digits (which such an integer needs) is parsed by the standard
library instead, as DRF would, so that validation sees the exact integer (the events endpoint
refuses it by index, naming `properties`).

A lone surrogate escape is refused on both paths (the standard library lets it through, and the
first UTF-8 encoding of the string, in a renderer, a log line or the Redis queue, then raised: a
500), with the JSON path of the string that holds it (`events[0].properties.a`): a
`LoneSurrogate` (a ValueError), which the parser raises as a ParseError naming that field.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_UTF8 = {"utf-8", "utf8"}
# Every ASCII digit to "0", every other byte to ".": a run of 19 digits is then a substring
# search, a small fraction of the time of re's `[0-9]{19,}` (which cost more than orjson's own
# parse; docs/benchmarks.md, "History"). In UTF-8 the bytes 0x30-0x39 are only ever those
# digits, so this finds exactly what the pattern would.
_DIGIT_MASK = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x2E for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def has_long_digit_run(raw: bytes) -> bool:
    """Whether `raw` holds 19 or more ASCII digits in a row."""
    return _LONG_DIGIT_RUN in raw.translate(_DIGIT_MASK)


def _strict_constant(value: str):
    raise ValueError(f"{value} is not valid JSON")  # NaN/Infinity, as DRF's strict parser


class LoneSurrogate(ValueError):
    """A JSON string (or key) holds a lone surrogate escape such as "\\ud800": not Unicode."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"a lone surrogate escape (not Unicode) in a string at {field}")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def lone_surrogate_path(value: Any) -> str | None:
    """The JSON path (`a[0].b`) of the first string or key in `value` holding a lone surrogate,
    `body` for the top level, or None. Iterative: parsed JSON may be nested thousands deep."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return path or "body"
        elif isinstance(item, dict):
            for key, sub in item.items():
                if _has_surrogate(key):
                    return path or "body"  # the key itself cannot be named in UTF-8
                stack.append((sub, f"{path}.{key}" if path else key))
        elif isinstance(item, list):
            stack.extend((sub, f"{path}[{index}]") for index, sub in enumerate(item))
    return None


def _surrogate_field(raw: bytes) -> str:
    """Where orjson's refusal of a lone surrogate lies, read again by the standard library."""
    try:
        parsed = json.loads(raw.decode("utf-8"), parse_constant=_strict_constant)
    except (ValueError, RecursionError):
        return "body"
    return lone_surrogate_path(parsed) or "body"


def json_loads(raw: bytes) -> Any:
    """Parse a UTF-8 JSON body; ValueError (orjson.JSONDecodeError included) when malformed,
    LoneSurrogate (a ValueError naming the field) for a string that is not Unicode."""
    if has_long_digit_run(raw):
        value = json.loads(raw.decode("utf-8"), parse_constant=_strict_constant)
        # Only on this rare path (a 19-digit run): orjson checks every string itself.
        field = lone_surrogate_path(value)
        if field is not None:
            raise LoneSurrogate(field)
        return value
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate" in str(exc):
            raise LoneSurrogate(_surrogate_field(raw)) from exc
        raise


class JSONFieldParseError(ParseError):
    """A ParseError that names the field at fault (core.errors answers it with that field)."""

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class FastJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            raw = stream.read()
            if encoding.lower() not in _UTF8:
                raw = raw.decode(encoding).encode("utf-8")
            return json_loads(raw)
        except LoneSurrogate as exc:
            raise JSONFieldParseError(
                "Surrogate characters are not allowed: a lone surrogate escape such as "
                "\\ud800 is not Unicode.",
                field=exc.field,
            ) from exc
        except (ValueError, LookupError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:  # the standard library, on very deep nesting
            raise ParseError("JSON parse error - nested too deeply") from exc
