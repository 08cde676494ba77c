"""The API's JSON parser (core/parsers.py): which bodies go to the standard
library because orjson would round their integers. No database."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from core.parsers import has_long_digit_run, json_loads

LONG_DIGITS = re.compile(rb"[0-9]{19,}")


# A one-line function: the suite's profile (conftest.py) bounds the examples; 3,000 took 20 s.
@settings(derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=30),
            st.text(alphabet="0123456789", min_size=15, max_size=25).map(str.encode),
            st.text(max_size=20).map(lambda text: text.encode("utf-8", "surrogatepass")),
        ),
        max_size=8,
    ).map(b"".join)
)
def test_has_long_digit_run__any_bytes__same_as_the_pattern(raw):
    # Given any bytes: digit runs around the threshold, binary, any UTF-8 text
    # When both look for 19 digits in a row
    # Then they agree
    assert has_long_digit_run(raw) is bool(LONG_DIGITS.search(raw))


def test_json_loads__integer_beyond_64_bits__kept_exact():
    # Given a body with an integer orjson would turn into a float, among other digits
    raw = b'{"id": "2026-11-23", "n": 18446744073709551616, "m": 1234567890123456789}'
    # When parsed
    parsed = json_loads(raw)
    # Then both integers are exact ints
    assert parsed["n"] == 18446744073709551616
    assert parsed["m"] == 1234567890123456789
    assert type(parsed["n"]) is int


def test_json_loads__eighteen_digits__orjson_exact():
    # Given the longest digit run that stays on the orjson path
    parsed = json_loads(b'{"n": 123456789012345678}')
    # Then it is still exact
    assert parsed == {"n": 123456789012345678}
