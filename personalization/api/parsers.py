"""The API's JSON parser: DRF's JSONParser contract, parsed by orjson.

The events endpoint parses up to 500 events per request, and the standard library's decoder was
a measurable share of its time (benchmarks/bench_ingest.py). orjson is strict like DRF's default
(no NaN or Infinity) and reports malformed input the same way: a ParseError, answered 400.
Unlike the standard library it refuses integers beyond 64 bits, also with a 400.
"""

from __future__ import annotations

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_UTF8 = {"utf-8", "utf8"}


class FastJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            raw = stream.read()
            if encoding.lower() not in _UTF8:
                raw = raw.decode(encoding)
            return orjson.loads(raw)
        except (ValueError, LookupError) as exc:  # orjson.JSONDecodeError, UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from exc
