"""The API's JSON renderer: DRF's renderer contract, encoded by orjson.

orjson writes compact UTF-8 JSON several times faster than the standard library's encoder, which
DRF's JSONRenderer uses. What orjson does not know (lazy translation strings, Decimal,
datetimes, querysets...) goes through DRF's own encoder's `default`, so each such value is
represented as DRF represents it. What orjson refuses (an integer beyond 64 bits, a lone
surrogate in a string) is rendered by DRF's JSONRenderer instead, which answers as it always
did. NaN and infinities, which DRF's strict encoder refuses (a 500), are written as `null`.

U+2028 and U+2029 are escaped, as DRF does: the answer stays safe to embed in a script.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = (
    orjson.OPT_NON_STR_KEYS  # {1: ...} as {"1": ...}, like the standard library
    | orjson.OPT_PASSTHROUGH_DATETIME  # DRF's representation (its encoder's `default`)
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
_default = JSONEncoder().default


def json_bytes(data: Any) -> bytes:
    """`data` as compact UTF-8 JSON (see the module docstring)."""
    try:
        raw = orjson.dumps(data, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return JSONRenderer().render(data)
    if b"\xe2\x80" in raw:  # U+2000..U+203F start so: a cheap test before two replaces
        raw = raw.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    return raw


class ORJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 (RFC 8259): no charset parameter, as DRF's JSONRenderer

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return json_bytes(data)
