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


def json_loads(raw: bytes) -> Any:
    """Parse a UTF-8 JSON body; ValueError (orjson.JSONDecodeError included) when malformed."""
    if has_long_digit_run(raw):
        return json.loads(raw.decode("utf-8"), parse_constant=_strict_constant)
    return orjson.loads(raw)


class FastJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            raw = stream.read()
            if encoding.lower() not in _UTF8:
                raw = raw.decode(encoding).encode("utf-8")
            return json_loads(raw)
        except (ValueError, LookupError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:  # the standard library, on very deep nesting
            raise ParseError("JSON parse error - nested too deeply") from exc
