"""personalization.decide._assign: the experiment arm assign() gives, remembered per process."""

from __future__ import annotations

import pytest

from core.pseudonym import pseudonymize
from experiments.engine import ExperimentSpec, assign
from personalization import decide


@pytest.fixture(autouse=True)
def _empty_memo():
    decide._assignments.clear()
    yield
    decide._assignments.clear()


def _spec(seed: str, coverage: float = 1.0) -> ExperimentSpec:
    return ExperimentSpec(
        key="exp", seed=seed, arm_keys=("a", "b", "c"), weights=(0.2, 0.3, 0.5), coverage=coverage
    )


def test_assign_memo__same_answers_as_assign__first_and_repeat_calls():
    # Given two specs (one partly covered: some visitors get no arm) and many visitors
    specs = [_spec("s1"), _spec("s2", coverage=0.5)]
    keys = [pseudonymize(f"visitor-{i}") for i in range(300)] + ["ascii id", "émoji 😀"]
    for _ in range(2):  # computed, then remembered
        for spec in specs:
            for key in keys:
                # Then every answer is assign()'s, None (not enrolled) included
                assert decide._assign(spec, key) == assign(spec, key)
    assert any(assign(specs[1], key) is None for key in keys)


def test_assign_memo__a_new_spec__its_own_answers():
    # Given a visitor remembered under one spec, who gets another arm under a new seed
    old, new = _spec("old"), _spec("new")
    key = next(
        k for k in (pseudonymize(f"v{i}") for i in range(100)) if assign(old, k) != assign(new, k)
    )
    decide._assign(old, key)
    # When the experiment is rebuilt with that seed (a snapshot rebuild makes new specs)
    # Then the new spec's arm is computed for it, not taken from the old one
    assert decide._assign(new, key) == assign(new, key)
    assert decide._assign(old, key) == assign(old, key)


def test_assign_memo__bounded(monkeypatch):
    monkeypatch.setattr(decide, "ASSIGNMENT_MEMO_SIZE", 10)
    spec = _spec("s")
    for i in range(35):
        key = pseudonymize(f"v{i}")
        assert decide._assign(spec, key) == assign(spec, key)
        assert len(decide._assignments) <= 10
