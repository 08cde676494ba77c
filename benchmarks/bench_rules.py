"""Benchmark: Mosaic's compiled conditions against the ``growthbook`` package's ``evalCondition``.

Run ``.venv/bin/python benchmarks/bench_rules.py``. Each engine evaluates the same condition on the
same attribute dict (the very same object); each figure is the median over several rounds of the
mean time per evaluation in a tight loop, rounds alternating between the engines. Exits 1 when
Mosaic is not at least 5x faster than the reference on matching conditions and 3x on a condition
that fails early. Importable: ``run()`` returns the rows without printing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make the repository importable without installing it.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from growthbook.core import evalCondition

from benchmarks import _support as support
from rules import compile_condition

ROUNDS = 7
MIN_ROUND_SECONDS = 0.2
MATCH_TARGET = 5.0
FAIL_EARLY_TARGET = 3.0

FIVE_CLAUSES: dict[str, Any] = {
    "country": {"$in": ["FR", "DE", "ES", "IT", "NL", "BE", "PT"]},
    "device": "mobile",
    "segments": {"$elemMatch": {"$in": ["vip", "loyal"]}},
    "appVersion": {"$vgte": "2.3.0"},
    "$or": [{"profile.rfm.segment": "champions"}, {"cart.total": {"$gt": 100}}],
}

ATTRIBUTES: dict[str, Any] = {
    "id": "visitor-42",
    "country": "DE",
    "device": "mobile",
    "browser": "firefox",
    "segments": ["new", "loyal"],
    "appVersion": "2.10.1",
    "cart": {"total": 180.5, "items": 3},
    "profile": {"rfm": {"segment": "at-risk", "score": 7}, "visits": 12},
    "language": "de-DE",
    "referrer": "https://news.example.com/articles/42",
    "plan": "premium",
    "age": 34,
    "newsletter": True,
    "tags": ["sports", "tech"],
    "utm": {"source": "newsletter", "campaign": "spring"},
}

# Same as FIVE_CLAUSES but "device" wants a value the visitor does not have.
FAIL_SECOND = {**FIVE_CLAUSES, "device": "desktop"}

TWENTY_CLAUSES: dict[str, Any] = {
    "country": {"$in": ["FR", "DE", "ES", "IT", "NL", "BE", "PT"]},
    "device": "mobile",
    "segments": {"$elemMatch": {"$in": ["vip", "loyal"]}},
    "appVersion": {"$vgte": "2.3.0", "$vlt": "3.0.0"},
    "browser": {"$nin": ["ie", "opera"]},
    "cart.total": {"$gte": 50},
    "cart.items": {"$lte": 10},
    "profile.visits": {"$gt": 3},
    "profile.rfm.score": {"$gte": 5, "$lte": 10},
    "language": {"$regex": "^de"},
    "plan": {"$ne": "free"},
    "age": {"$gte": 18, "$lt": 65},
    "newsletter": True,
    "tags": {"$all": ["tech"]},
    "utm.source": {"$exists": True},
    "utm.campaign": {"$in": ["spring", "summer"]},
    "id": {"$type": "string"},
    "referrer": {"$regexi": "NEWS"},
    "$or": [{"profile.rfm.segment": "champions"}, {"cart.total": {"$gt": 100}}],
    "$nor": [{"country": "US"}, {"device": "tv"}],
}

CASES: list[tuple[str, dict[str, Any], bool, float]] = [
    ("5 clauses, matches", FIVE_CLAUSES, True, MATCH_TARGET),
    ("5 clauses, fails on 2nd", FAIL_SECOND, False, FAIL_EARLY_TARGET),
    ("20 clauses, matches", TWENTY_CLAUSES, True, MATCH_TARGET),
]


def _time_pair(
    mosaic: Callable[[], object], reference: Callable[[], object], rounds: int = ROUNDS
) -> tuple[float, float]:
    """Median µs per call of each; rounds alternate between the engines so that noise from the
    shared machine lands on both."""
    result = support.interleaved_us(
        {"mosaic": mosaic, "reference": reference}, rounds, MIN_ROUND_SECONDS
    )
    return result["mosaic"], result["reference"]


def run(rounds: int = ROUNDS) -> list[dict[str, Any]]:
    """Time every case on both engines, after checking that both give the expected answer."""
    rows = []
    for name, condition, expected, target in CASES:
        mosaic = compile_condition(condition)
        assert mosaic(ATTRIBUTES) is expected, name
        assert evalCondition(ATTRIBUTES, condition) is expected, name
        mosaic_us, reference_us = _time_pair(
            lambda mosaic=mosaic: mosaic(ATTRIBUTES),
            lambda condition=condition: evalCondition(ATTRIBUTES, condition),
            rounds,
        )
        rows.append(
            {
                "case": name,
                "mosaic_us": mosaic_us,
                "reference_us": reference_us,
                "ratio": reference_us / mosaic_us,
                "target": target,
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="fewer for a smoke run")
    rounds = parser.parse_args().rounds
    rows = run(rounds)
    print(f"{'case':<26} {'mosaic µs':>10} {'growthbook µs':>14} {'ratio':>7} {'target':>7}  ok")
    failed = False
    for row in rows:
        ok = row["ratio"] >= row["target"]
        failed |= not ok
        print(
            f"{row['case']:<26} {row['mosaic_us']:>10.3f} {row['reference_us']:>14.3f} "
            f"{row['ratio']:>6.1f}x {row['target']:>6.1f}x  {'yes' if ok else 'NO'}"
        )
    print(f"(median of {rounds} rounds; python {sys.version.split()[0]})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
