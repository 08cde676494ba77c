"""Mosaic's ExperimentSpec and assign: determinism, distribution, coverage, seeds, namespaces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scipy.stats import chisquare

from experiments.engine import (
    Assignment,
    ExperimentSpec,
    assign,
    choose_variation,
    get_bucket_ranges,
    in_namespace,
)
from experiments.engine import (
    hash as gb_hash,
)

REPO_ROOT = Path(__file__).resolve().parents[4]
SYNTHETIC_IDS = [f"visitor-{i:05d}" for i in range(20_000)]


def _spec(**overrides) -> ExperimentSpec:
    fields = {
        "key": "hero-copy",
        "seed": "hero-copy-2025",
        "arm_keys": ("control", "bold", "playful"),
        "weights": (0.2, 0.3, 0.5),
    }
    fields.update(overrides)
    return ExperimentSpec(**fields)


def test_assign__same_unit__same_arm():
    # Given a spec and a unit id
    spec = _spec()
    # When assigning repeatedly, including with an equal spec built again
    results = {assign(spec, "visitor-42") for _ in range(5)} | {assign(_spec(), "visitor-42")}
    # Then every call gives the same assignment
    assert len(results) == 1
    (assignment,) = results
    assert isinstance(assignment, Assignment)
    assert assignment.experiment_key == "hero-copy"
    assert assignment.arm_key == spec.arm_keys[assignment.arm_index]
    assert 0 <= assignment.bucket < 1


def test_assign__other_process__same_arms():
    # Given assignments computed in this process
    ids = SYNTHETIC_IDS[:200]
    here = [assign(_spec(), uid).arm_index for uid in ids]
    # When another interpreter, with a different str hash randomisation, computes them
    code = (
        "from experiments.engine import ExperimentSpec, assign\n"
        "spec = ExperimentSpec('hero-copy', 'hero-copy-2025', ('control', 'bold', 'playful'),"
        " (0.2, 0.3, 0.5))\n"
        f"print([assign(spec, f'visitor-{{i:05d}}').arm_index for i in range({len(ids)})])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    # Then it gets the same arms
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(here)


@pytest.mark.parametrize("hash_version", [1, 2])
@pytest.mark.parametrize("namespace", [None, ("checkout", 0.1, 0.8)])
def test_assign__any_unit__agrees_with_growthbook_primitives(hash_version, namespace):
    # Given a spec with reduced coverage, and ids including non-ASCII and astral characters
    spec = _spec(coverage=0.7, hash_version=hash_version, namespace=namespace)
    ids = [*SYNTHETIC_IDS[:2000], "josé", "用户-7", "emoji-\U0001f600", "\ud800-lone"]
    ranges = get_bucket_ranges(3, 0.7, [0.2, 0.3, 0.5])
    for uid in ids:
        # When assigning through the precomputed fast path
        result = assign(spec, uid)
        # Then it equals GrowthBook's namespace check, hash and chooseVariation composed
        n = gb_hash(spec.seed, uid, hash_version)
        expected = (
            -1 if namespace and not in_namespace(uid, namespace) else choose_variation(n, ranges)
        )
        assert (result.arm_index if result else -1) == expected, uid
        if result:
            assert result.bucket == n


def test_assign__many_ids__distribution_matches_weights():
    # Given a 20/30/50 experiment with full coverage
    spec = _spec()
    # When assigning 20,000 synthetic ids
    counts = [0, 0, 0]
    for uid in SYNTHETIC_IDS:
        counts[assign(spec, uid).arm_index] += 1
    # Then the arm counts fit the weights (chi-square goodness of fit)
    expected = [w * len(SYNTHETIC_IDS) for w in spec.weights]
    assert chisquare(counts, expected).pvalue > 0.001, counts


def test_assign__half_coverage__excludes_about_half():
    # Given an even two-arm experiment at 50% coverage
    spec = _spec(arm_keys=("a", "b"), weights=None, coverage=0.5)
    # When assigning 20,000 synthetic ids
    results = [assign(spec, uid) for uid in SYNTHETIC_IDS]
    included = [r for r in results if r is not None]
    # Then about half are excluded (binomial sd is 0.35%) and the included split evenly
    assert 0.48 < 1 - len(included) / len(results) < 0.52
    arm_counts = [sum(r.arm_index == i for r in included) for i in (0, 1)]
    assert chisquare(arm_counts).pvalue > 0.001, arm_counts


def test_assign__raising_coverage__keeps_included_units_in_their_arm():
    # Given the same experiment at 30% and 80% coverage
    low, high = _spec(coverage=0.3), _spec(coverage=0.8)
    for uid in SYNTHETIC_IDS[:3000]:
        # When a unit is included at the lower coverage
        before = assign(low, uid)
        # Then it stays in the same arm at the higher one
        if before is not None:
            assert assign(high, uid).arm_index == before.arm_index


def test_assign__zero_coverage__excludes_everyone():
    # Given an experiment at 0% coverage
    spec = _spec(coverage=0.0)
    # When assigning
    results = {assign(spec, uid) for uid in SYNTHETIC_IDS[:2000]}
    # Then nobody is in it
    assert results == {None}


def test_assign__changed_seed__reshuffles():
    # Given the same experiment under two seeds
    first, second = (
        _spec(arm_keys=("a", "b"), weights=None),
        _spec(arm_keys=("a", "b"), weights=None, seed="hero-copy-rerun"),
    )
    # When assigning the same ids under both
    same = sum(
        assign(first, uid).arm_index == assign(second, uid).arm_index
        for uid in SYNTHETIC_IDS[:4000]
    )
    # Then agreement is what independent coin flips give (about half), not the same split
    assert 0.45 < same / 4000 < 0.55


def test_assign__empty_unit_id__none():
    # Given a spec
    spec = _spec()
    # When the unit id is empty
    result = assign(spec, "")
    # Then the unit is not in the experiment
    assert result is None


def test_assign__namespace__only_units_in_the_slice():
    # Given two experiments sharing a namespace in disjoint slices
    left = _spec(key="left", namespace=("hero", 0.0, 0.4))
    right = _spec(key="right", namespace=("hero", 0.4, 1.0))
    ids = SYNTHETIC_IDS[:5000]
    # When assigning every id to both
    in_left = [assign(left, uid) is not None for uid in ids]
    in_right = [assign(right, uid) is not None for uid in ids]
    # Then each unit is in exactly one of them, about 40% in the first
    assert all(a != b for a, b in zip(in_left, in_right, strict=True))
    assert 0.37 < sum(in_left) / len(ids) < 0.43


def test_spec__empty_seed__uses_the_key():
    # Given a spec without a seed
    spec = _spec(seed="")
    # When it is built
    # Then the key is the seed, as in GrowthBook, and assignments follow it
    assert spec.seed == "hero-copy"
    assert assign(spec, "visitor-1") == assign(_spec(seed="hero-copy"), "visitor-1")


def test_spec__lists__stored_as_tuples_and_hashable():
    # Given arms and weights passed as lists
    spec = _spec(arm_keys=["a", "b"], weights=[0.25, 0.75], namespace=["hero", 0, 1])
    # When it is built
    # Then they are stored as tuples, the spec is hashable and ranges are precomputed
    assert spec.arm_keys == ("a", "b")
    assert spec.weights == (0.25, 0.75)
    assert spec.namespace == ("hero", 0.0, 1.0)
    assert spec.bucket_ranges == ((0.0, 0.25), (0.25, 1.0))
    assert hash(spec) == hash(
        _spec(arm_keys=("a", "b"), weights=(0.25, 0.75), namespace=("hero", 0, 1))
    )


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"key": ""}, id="empty-key"),
        pytest.param({"arm_keys": ("only",), "weights": None}, id="one-arm"),
        pytest.param({"arm_keys": ("a", "a", "b")}, id="duplicate-arms"),
        pytest.param({"weights": (0.5, 0.5)}, id="weights-length"),
        pytest.param({"weights": (0.2, 0.2, 0.2)}, id="weights-sum-low"),
        pytest.param({"weights": (1.2, -0.4, 0.2)}, id="negative-weight"),
        pytest.param({"coverage": 1.5}, id="coverage-above-1"),
        pytest.param({"coverage": -0.1}, id="coverage-negative"),
        pytest.param({"coverage": float("nan")}, id="coverage-nan"),
        pytest.param({"hash_version": 3}, id="hash-version"),
        pytest.param({"namespace": ("hero", 0.6, 0.4)}, id="namespace-inverted"),
        pytest.param({"namespace": ("", 0.0, 0.5)}, id="namespace-unnamed"),
        pytest.param({"namespace": ("hero", 0.5)}, id="namespace-shape"),
    ],
)
def test_spec__invalid__raises_value_error(overrides):
    # Given spec fields GrowthBook would not run as written
    # When building the spec
    # Then it is refused where it is configured, not silently re-split
    with pytest.raises(ValueError, match=r"experiment|key"):
        _spec(**overrides)
