"""FNV-1a over UTF-16 code units beyond the ASCII-only conformance cases."""

from __future__ import annotations

import pytest

from experiments.engine import fnv1a32, hash


def _fnv_over_units(units):
    h = 0x811C9DC5
    for unit in units:
        h = ((h ^ unit) * 0x01000193) % 2**32
    return h


@pytest.mark.parametrize(
    ("text", "units"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("a", [0x61], id="ascii"),
        pytest.param("josé", [0x6A, 0x6F, 0x73, 0xE9], id="latin-1"),
        pytest.param("用户", [0x7528, 0x6237], id="cjk"),
        pytest.param("\U0001f600", [0xD83D, 0xDE00], id="astral-as-surrogate-pair"),
        pytest.param("\ud800", [0xD800], id="lone-surrogate"),
    ],
)
def test_fnv1a32__any_text__hashes_utf16_code_units_like_js_charcodeat(text, units):
    # Given a string and its UTF-16 code units (what JavaScript's charCodeAt yields)
    # When hashing it
    result = fnv1a32(text)
    # Then it is FNV-1a over those code units, not over UTF-8 bytes
    assert result == _fnv_over_units(units)


@pytest.mark.parametrize("version", [1, 2])
def test_hash__growthbook_python_sdk__same_buckets(version):
    # Given the reference Python SDK (a dev dependency), and BMP ids where every SDK agrees
    core = pytest.importorskip("growthbook.core", reason="growthbook SDK not installed")
    ids = [f"user-{i}" for i in range(500)] + ["josé", "用户-1", "ÅÄÖ", "\u00a0x"]
    # When hashing with both
    mismatched = [
        uid for uid in ids if hash("seed", uid, version) != core.gbhash("seed", uid, version)
    ]
    # Then the buckets are identical (every mismatch listed, not only the first)
    assert mismatched == []
