"""Relative instants in the condition language: $ago/$ahead, the evaluation's now, the next
instant a condition can flip, validation paths and descriptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import (
    compile_condition,
    describe_condition,
    evaluate,
    evaluation_clock,
    instant_seconds,
    is_time_dependent,
    timing,
    validate_condition,
)

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
ABANDONED = {
    "profile.aggregates.last_add_to_cart_at": {"$lte": {"$ago": "10m"}},
    "profile.aggregates.purchased_since_last_add_to_cart": False,
}


def _profile(**aggregates) -> dict:
    return {"profile": {"aggregates": aggregates}}


def test_ago__instant_inside_and_outside_window__compared_with_the_calls_now() -> None:
    # Given "added to cart in the last 30 minutes", compiled once
    fn = compile_condition({"profile.aggregates.last_add_to_cart_at": {"$gte": {"$ago": "30m"}}})
    attrs = _profile(last_add_to_cart_at=(NOW - timedelta(minutes=20)).isoformat())

    # When it is evaluated at several instants
    # Then the answer follows the evaluation's now, not the compile time
    assert fn(attrs, now=NOW) is True
    assert fn(attrs, now=NOW + timedelta(minutes=10)) is True  # exactly 30 minutes: $gte holds
    assert fn(attrs, now=NOW + timedelta(minutes=10, seconds=1)) is False
    assert is_time_dependent(fn)
    assert not is_time_dependent(compile_condition({"a": 1}))


def test_ago__wall_clock_when_no_now_given__recent_instant_matches() -> None:
    # Given an instant one minute ago by the wall clock
    recent = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    # When evaluated without a now
    # Then the wall clock at the call is used
    assert evaluate({"t": {"$gte": {"$ago": "5m"}}}, {"t": recent}) is True
    assert evaluate({"t": {"$gte": {"$ago": "30s"}}}, {"t": recent}) is False


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-06T19:00:00+00:00",
        "2026-12-06T19:00:00Z",
        "2026-12-06T20:00:00+01:00",
        "2026-12-06T19:00:00",  # naive: UTC
        NOW.timestamp() - 3600,  # epoch seconds
        (NOW.timestamp() - 3600) * 1000,  # epoch milliseconds
        NOW - timedelta(hours=1),
    ],
)
def test_ago__every_instant_form__same_answer(value) -> None:
    # Given the same instant (one hour before NOW) in the forms attributes hold
    fn = compile_condition({"t": {"$lte": {"$ago": "1h"}}})

    # When compared with "at least an hour ago" and "less than an hour ago"
    # Then all forms agree
    assert fn({"t": value}, now=NOW) is True
    assert compile_condition({"t": {"$gt": {"$ago": "1h"}}})({"t": value}, now=NOW) is False


@pytest.mark.parametrize("value", [None, True, "soon", "", [1], {"a": 1}, float("nan")])
def test_ago__attribute_not_an_instant__never_matches(value) -> None:
    # Given a value that is not an instant
    # When compared either way
    # Then neither matches (strict typing, as for plain ordering)
    for op in ("$gt", "$gte", "$lt", "$lte"):
        assert evaluate({"t": {op: {"$ago": "1h"}}}, {"t": value}, now=NOW) is False


def test_ahead__trial_ending_within_three_days__matches_until_then() -> None:
    # Given "trial ends within the next 3 days" (and not yet ended)
    fn = compile_condition({"trial_ends_at": {"$lte": {"$ahead": "3d"}, "$gt": {"$ahead": "0s"}}})
    ends = (NOW + timedelta(days=5)).isoformat()

    # When evaluated now, 2 days later and 6 days later
    # Then only the middle instant is inside
    assert fn({"trial_ends_at": ends}, now=NOW) is False
    assert fn({"trial_ends_at": ends}, now=NOW + timedelta(days=2, seconds=1)) is True
    assert fn({"trial_ends_at": ends}, now=NOW + timedelta(days=6)) is False


def test_clock__cart_abandoner__next_change_is_ten_minutes_after_add() -> None:
    # Given a profile that added to cart 3 minutes ago, nothing bought
    added = NOW - timedelta(minutes=3)
    attrs = _profile(last_add_to_cart_at=added.isoformat(), purchased_since_last_add_to_cart=False)
    fn = compile_condition(ABANDONED)

    # When evaluated under a collecting clock
    with evaluation_clock(NOW) as clock:
        before = fn(attrs)

    # Then it is not yet an abandoner, and may become one at add + 10 minutes
    assert before is False
    expected = (added + timedelta(minutes=10)).timestamp()
    assert clock.next_change == pytest.approx(expected, abs=0.01)
    assert clock.next_change > expected  # just after the crossing, whatever the strictness
    # And at that instant it is one, with no further change to schedule
    with evaluation_clock(clock.next_change) as later:
        assert fn(attrs) is True
    assert later.next_change is None


def test_clock__several_conditions__earliest_crossing_kept() -> None:
    # Given two time conditions over different instants
    attrs = {
        "a": (NOW - timedelta(minutes=1)).isoformat(),
        "b": (NOW - timedelta(hours=1)).isoformat(),
    }
    first = compile_condition({"a": {"$lte": {"$ago": "1h"}}})  # flips in 59 minutes
    second = compile_condition({"b": {"$gte": {"$ago": "90m"}}})  # flips in 30 minutes

    # When both are evaluated under one clock
    with evaluation_clock(NOW) as clock:
        first(attrs)
        second(attrs)

    # Then the earliest crossing is the one to schedule
    assert clock.next_change == pytest.approx((NOW + timedelta(minutes=30)).timestamp(), abs=0.01)


def test_clock__crossing_in_the_past__not_scheduled() -> None:
    # Given an add to cart two hours ago (the 10-minute crossing is long past)
    attrs = _profile(
        last_add_to_cart_at=(NOW - timedelta(hours=2)).isoformat(),
        purchased_since_last_add_to_cart=False,
    )

    # When evaluated under a collecting clock
    with evaluation_clock(NOW) as clock:
        result = compile_condition(ABANDONED)(attrs)

    # Then it matches and nothing is left to schedule
    assert result is True
    assert clock.next_change is None


def test_compile__relative_operand_parsed_once__no_parsing_per_call(monkeypatch) -> None:
    # Given a compiled time condition
    fn = compile_condition({"t": {"$gte": {"$ago": "30m"}}})
    calls = []
    monkeypatch.setattr(timing, "parse_duration", lambda text: calls.append(text) or 0)

    # When evaluated many times
    for _ in range(100):
        fn({"t": NOW.isoformat()}, now=NOW)

    # Then the duration was never parsed again
    assert calls == []


@pytest.mark.parametrize(
    ("condition", "path", "needle"),
    [
        ({"t": {"$gte": {"$ago": "30x"}}}, "$.t.$gte.$ago", "duration"),
        ({"t": {"$gte": {"$ago": "-5m"}}}, "$.t.$gte.$ago", "duration"),
        ({"t": {"$gte": {"$ago": 30}}}, "$.t.$gte.$ago", "duration"),
        ({"t": {"$gte": {"$ago": "99999999d"}}}, "$.t.$gte.$ago", "too long"),
        ({"t": {"$lt": {"$ahead": "3651d"}}}, "$.t.$lt.$ahead", "too long"),
        ({"t": {"$gte": {"$since": "3d"}}}, "$.t.$gte", "relative instant"),
        ({"t": {"$gte": {"$ago": "1d", "$ahead": "1d"}}}, "$.t.$gte", "one key"),
        ({"$or": [{"t": {"$lte": {"$ago": "1 h"}}}]}, "$.$or[0].t.$lte.$ago", "duration"),
    ],
)
def test_validate__bad_relative_instant__error_at_its_path(condition, path, needle) -> None:
    # Given a malformed or absurd relative instant
    # When validated
    errors = validate_condition(condition)

    # Then one error names its path and says why; and the evaluator fails closed
    assert [e.path for e in errors] == [path]
    assert needle in errors[0].message
    assert evaluate(condition, {"t": NOW.isoformat()}, now=NOW) is False
    assert evaluate({"$not": condition}, {"t": NOW.isoformat()}, now=NOW) is False


def test_validate__good_relative_instants__no_error() -> None:
    # Given well-formed relative instants, combined units included
    condition = {
        "a": {"$gte": {"$ago": "1h30m"}},
        "b": {"$lt": {"$ahead": "2w"}},
        "c": {"$gt": {"$ago": "0s"}},
    }

    # When validated
    # Then nothing is reported
    assert validate_condition(condition) == []


def test_describe__relative_instants__read_as_english() -> None:
    # Given the cart-abandoner condition and a future one
    # When described
    # Then the durations are spelled out
    assert describe_condition(ABANDONED) == (
        "profile.aggregates.last_add_to_cart_at is on or before 10 minutes ago and "
        "profile.aggregates.purchased_since_last_add_to_cart is false"
    )
    assert describe_condition({"ends": {"$lt": {"$ahead": "1h30m"}}}) == (
        "ends is before 1 hour 30 minutes from now"
    )


def test_instant_seconds__forms__epoch_seconds() -> None:
    # Given an instant in several forms
    # When converted
    # Then all give the same epoch seconds; non-instants give None
    epoch = NOW.timestamp()
    assert instant_seconds(NOW.isoformat()) == epoch
    assert instant_seconds("2026-12-06T20:00:00Z") == epoch
    assert instant_seconds(epoch * 1000) == epoch
    assert instant_seconds(int(epoch)) == epoch
    assert instant_seconds(True) is None
    assert instant_seconds("2026-13-45") is None


# --- next_change never misses a flip (property) ---------------------------------------------------

_OPS = ("$gt", "$gte", "$lt", "$lte")
_clause = st.builds(
    lambda field, op, kind, seconds: {field: {op: {kind: f"{seconds}s"}}},
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(_OPS),
    st.sampled_from(["$ago", "$ahead"]),
    st.integers(0, 5000),
)
_conditions = st.recursive(
    _clause,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, inner),
    ),
    max_leaves=6,
)
_millis = st.one_of(
    st.integers(-8000, 8000).map(lambda s: s * 1000), st.integers(-8_000_000, 8_000_000)
)
_attributes = st.fixed_dictionaries(
    {"a": _millis, "b": _millis, "c": st.one_of(st.none(), _millis), "as_number": st.booleans()}
)


@settings(max_examples=500, deadline=None)
@given(_conditions, _attributes, st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_next_change__random_conditions__answer_constant_until_then(condition, offsets, probes):
    # Given a random time condition and attributes holding instants around NOW (or missing)
    now = NOW.timestamp()
    as_number = offsets.pop("as_number")
    attrs = {
        k: None
        if v is None
        else (now + v / 1000 if as_number else (NOW + timedelta(milliseconds=v)).isoformat())
        for k, v in offsets.items()
    }
    fn = compile_condition(condition)

    # When evaluated at NOW under a collecting clock
    with evaluation_clock(now) as clock:
        answer = fn(attrs)
    # (next_change is the crossing plus a 1 ms margin, so that a re-evaluation then sees it)
    horizon = (
        clock.next_change - timing.CROSSING_MARGIN if clock.next_change is not None else now + 20000
    )

    # Then at any instant before the crossing the answer is the same (no flip is missed)
    for probe in probes:
        at = now + probe * (horizon - now) * 0.999999
        assert fn(attrs, now=at) is answer
