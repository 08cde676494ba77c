"""visitor_load's profile parse (personalization.visitors._profile_parse) gives exactly what
json.loads gives - same values, same types - or fails as it does."""

from __future__ import annotations

import json
import math
import random
import struct

import pytest

from personalization.visitors import _profile_parse

DOCUMENTS = [
    b'{"traits": {"tier": "gold", "name": "Ann", "age": 34}, "aggregates": {"spent": 180.5},'
    b' "segments": ["loyal"], "consent": {"analytics": true, "personalization": false}}',
    b'{"a": 18446744073709551615, "b": -9223372036854775808, "c": 999999999999999999}',
    b'{"a": 18446744073709551616}',  # beyond 64 bits: an int for json.loads
    b'{"a": -9223372036854775809}',
    b'{"a": 123456789012345678901234567890, "b": 1234567890123456789.5}',
    b'{"a": 1e400, "b": -1e400, "c": 1e-400, "d": -0.0, "e": -0, "f": 1E5, "g": 5e-324}',
    b'{"a": NaN, "b": Infinity}',
    b'{"a": "\\ud800"}',  # a lone surrogate escape
    b'{"a": "\\ud83d\\ude00 \\u2028 \\u0000 \\u00e9 \xc3\xa9"}',
    b'\xef\xbb\xbf{"a": 1}',  # UTF-8 BOM
    '{"a": "é"}'.encode("utf-16"),
    '{"a": "é"}'.encode("utf-32"),
    b'{"a": 1, "b": 2, "a": 3}',
    b'  {"a": [1, 2.0, "3", null, true, false, {}, []]}  ',
    b"[1, 2]",
    b'"text"',
    b'{"a": "x\ty"}',
    b'{"a": 1}x',
    b'{"a": 01}',
    b"\xff",
    b"",
    b"[" * 300 + b"]" * 300,
    b"[" * 1000 + b"]" * 1000,  # too deep for json.loads (RecursionError), not for orjson
    b"[" * 5000 + b"]" * 5000,
]


def _outcome(parse, raw):
    try:
        value = parse(raw)
    except Exception as exc:  # the kind of failure is part of the outcome
        return ("raised", type(exc))
    return ("parsed", repr(value))  # repr: 1 and 1.0, -0.0 and 0.0 differ


@pytest.mark.parametrize("raw", DOCUMENTS, ids=lambda raw: repr(raw[:40]))
def test_profile_parse__same_as_json_loads(raw):
    assert _outcome(_profile_parse, raw) == _outcome(json.loads, raw)


def test_profile_parse__numbers__same_as_json_loads():
    rng = random.Random(5)
    numbers = []
    for _ in range(3000):
        x = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        if math.isfinite(x):
            numbers += [repr(x), f"{x:.17g}", f"{x:.20e}"]
        digits = str(rng.getrandbits(rng.randint(1, 90)))
        numbers += [digits, f"-{digits}", f"{digits[:18]}.{digits[::-1]}e-{rng.randint(0, 330)}"]
    raw = ("[" + ",".join(numbers) + "]").encode()
    for start in range(0, len(numbers), 50):  # small documents, most of them taking orjson
        chunk = ("[" + ",".join(numbers[start : start + 50]) + "]").encode()
        assert _outcome(_profile_parse, chunk) == _outcome(json.loads, chunk)
    assert _outcome(_profile_parse, raw) == _outcome(json.loads, raw)
