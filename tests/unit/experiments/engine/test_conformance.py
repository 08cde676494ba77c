"""GrowthBook conformance: every case of the hash and bucketing sections of the public SDK suite.

The suite lives outside the repository (``<workspace>/shared/conformance/growthbook-cases.json``)
and is never copied in; when it is absent the cases are skipped with the reason.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from experiments.engine import (
    choose_variation,
    get_bucket_ranges,
    get_equal_weights,
    hash,
    in_namespace,
)

SUITE_PATH = (
    Path(__file__).resolve().parents[4].parent / "shared" / "conformance" / "growthbook-cases.json"
)

# The suite writes floats rounded to at most 8 decimals (1/3 is 0.33333333), so results are
# rounded the same way before comparing; hash values are exact quotients and compared exactly.
SUITE_DECIMALS = 8


@cache
def _suite() -> dict | None:
    if not SUITE_PATH.is_file():
        return None
    return json.loads(SUITE_PATH.read_text(encoding="utf-8"))


def _cases(section: str, name_of=lambda row: str(row[0])) -> list:
    suite = _suite()
    if suite is None:
        reason = f"GrowthBook conformance suite not found at {SUITE_PATH}"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="suite-absent")]
    return [pytest.param(row, id=name_of(row)) for row in suite[section]]


def _rounded(values):
    return [round(v, SUITE_DECIMALS) for v in values]


@pytest.mark.parametrize("case", _cases("hash", lambda row: f"{row[0]!r}+{row[1]!r}-v{row[2]}"))
def test_hash__suite_case__matches_expected(case):
    # Given a seed, a value and a hash version from the suite
    seed, value, version, expected = case
    # When hashing
    result = hash(seed, value, version)
    # Then the bucket is exactly the expected one (None for an unknown version)
    assert result == expected


@pytest.mark.parametrize("case", _cases("getBucketRange"))
def test_get_bucket_ranges__suite_case__matches_expected(case):
    # Given a number of variations, a coverage and optional weights
    _name, (num_variations, coverage, weights), expected = case
    # When computing the bucket ranges
    ranges = get_bucket_ranges(num_variations, coverage, weights)
    # Then each range equals the expected one at the suite's precision
    assert [_rounded(r) for r in ranges] == [list(r) for r in expected]


@pytest.mark.parametrize("case", _cases("chooseVariation"))
def test_choose_variation__suite_case__matches_expected(case):
    # Given a hash value and bucket ranges
    _name, n, ranges, expected = case
    # When choosing the variation
    index = choose_variation(n, [tuple(r) for r in ranges])
    # Then it is the expected index, or -1 when n is in no range
    assert index == expected


@pytest.mark.parametrize("case", _cases("inNamespace"))
def test_in_namespace__suite_case__matches_expected(case):
    # Given a unit id and a namespace slice
    _name, unit_id, (namespace, start, end), expected = case
    # When checking namespace membership
    result = in_namespace(unit_id, (namespace, start, end))
    # Then membership is as expected
    assert result is expected


@pytest.mark.parametrize("case", _cases("getEqualWeights", lambda row: f"n={row[0]}"))
def test_get_equal_weights__suite_case__matches_expected(case):
    # Given a number of variations
    n, expected = case
    # When computing equal weights
    weights = get_equal_weights(n)
    # Then they equal the expected ones at the suite's precision
    assert _rounded(weights) == expected
