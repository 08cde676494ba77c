"""Focused tests of the rule engine: validation paths, descriptions, fields, dates, regex safety,
typing corners and package purity."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from rules import (
    ConditionError,
    compile_condition,
    condition_fields,
    describe_condition,
    evaluate,
    validate_condition,
)

ROOT = Path(__file__).resolve().parents[3]

# --- Regular expressions: no stall ------------------------------------------------------------


def _run_with_timeout(fn, timeout: float = 5.0):
    """Run fn in a daemon thread; return (finished, result). A stalled regex cannot be interrupted,
    so the thread is left behind as a daemon - the test fails on `finished` either way."""
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(fn()), daemon=True)
    worker.start()
    worker.join(timeout)
    return (not worker.is_alive(), outcome[0] if outcome else None)


def test_evaluate__regex_redos__returns_quickly() -> None:
    # Given the classic catastrophic-backtracking pattern and an input that defeats it
    # (Python's re would need ~2**5000 steps)
    condition = {"ua": {"$regex": "^(a+)+$"}}
    attributes = {"ua": "a" * 5000 + "!"}

    # When it is evaluated under a generous time limit
    finished, result = _run_with_timeout(lambda: compile_condition(condition)(attributes))

    # Then it finished, with the right answer
    assert finished
    assert result is False


def test_evaluate__regex_redos_case_insensitive_and_matching__returns_quickly() -> None:
    # Given a nested-quantifier pattern, case-insensitive, and inputs that do and do not match
    compiled = compile_condition({"ua": {"$regexi": "^(A|a)*(a+)+$"}})

    # When both are evaluated
    finished, results = _run_with_timeout(
        lambda: (compiled({"ua": "a" * 20000}), compiled({"ua": "a" * 20000 + "b"}))
    )

    # Then both answered, correctly
    assert finished
    assert results == (True, False)


def test_validate__backreference_and_lookahead__rejected_with_reason() -> None:
    # Given patterns that need backtracking
    condition = {"a": {"$regex": r"(a+)\1"}, "b": {"$regexi": "^(?!admin)"}}

    # When validated
    errors = validate_condition(condition)

    # Then both are rejected at their paths, saying why
    assert [e.path for e in errors] == ["$.a.$regex", "$.b.$regexi"]
    assert all("backtracking" in e.message for e in errors)


def test_compile__pattern_refused_under_not__never_matches() -> None:
    # Given a lookahead pattern nobody validated, under a $not
    compiled = compile_condition({"$not": {"ua": {"$regex": "^(?=x)"}}})

    # When evaluated on anything
    # Then it fails closed: $not cannot turn a refused condition into a match
    assert compiled({"ua": "y"}) is False
    assert compiled({}) is False


def test_evaluate__js_style_regex_syntax__supported() -> None:
    # Given JavaScript-flavoured patterns (\d, named group, escaped slash, \u escape)
    cases = [
        ({"$regex": r"^\d{3}-\d{4}$"}, "555-1234", True),
        ({"$regex": r"(?<major>\d+)\.\d+"}, "v12.4", True),
        ({"$regex": r"^https:\/\/"}, "https://x", True),
        ({"$regex": r"caf\u00e9"}, "café", True),
        ({"$regexi": "MOBILE"}, "android mobile", True),
        ({"$regexi": "^k"}, "\u212aelvin", True),  # RE2 folds the Kelvin sign to k
        ({"$regex": "^ab$"}, "ab\n", False),  # like JavaScript, $ is the very end
    ]
    for operand, text, expected in cases:
        # When each is evaluated
        # Then it answers as in JavaScript
        assert evaluate({"s": operand}, {"s": text}) is expected, operand


def test_evaluate__regex_on_non_string__false() -> None:
    # Given a regex condition and non-string attributes
    compiled = compile_condition({"n": {"$regex": "1"}})

    # When evaluated on a number, a list and a missing value
    # Then none of them matches (no coercion to string)
    assert compiled({"n": 1}) is False
    assert compiled({"n": ["1"]}) is False
    assert compiled({}) is False


# --- Dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "attribute", "expected"),
    [
        ("$gt", "2026-11-01T00:00:01Z", True),
        ("$gt", "2026-11-01T00:00:00Z", False),
        ("$gte", "2026-11-01T00:00:00Z", True),
        ("$gt", "2026-11-01T01:30:00+02:00", False),  # = 2026-10-31T23:30Z
        ("$lt", "2026-11-01T01:30:00+02:00", True),
        ("$gt", "2026-11-01T00:00:00.5", True),  # naive means UTC
        ("$gt", "2026-11-02", True),  # date alone: midnight UTC
        ("$lte", "2026-11-01", True),
        ("$gt", "2026-11-01T00:00:00-00:30", True),
        ("$gt", "2026-11-01t00:00:01z", True),
    ],
)
def test_evaluate__iso_strings__compared_as_instants(operator, attribute, expected) -> None:
    # Given a condition on a request time with an ISO-8601 operand
    condition = {"request.time": {operator: "2026-11-01T00:00:00Z"}}

    # When the attribute is another ISO-8601 string (any offset, or none)
    result = evaluate(condition, {"request": {"time": attribute}})

    # Then the two compare as instants
    assert result is expected


def test_evaluate__offsets_that_break_string_order__still_ordered_by_instant() -> None:
    # Given two instants whose text order is the reverse of their time order
    # ("2026-11-01T05:00+08:00" is 2026-10-31T21:00Z, before 22:00Z)
    condition = {"t": {"$lt": "2026-10-31T22:00:00Z"}}

    # When evaluated
    result = evaluate(condition, {"t": "2026-11-01T05:00:00+08:00"})

    # Then the earlier instant is "less than"
    assert result is True


def test_evaluate__datetime_attribute__compared_with_iso_operand() -> None:
    # Given a condition with an ISO operand
    compiled = compile_condition({"now": {"$gte": "2026-11-01T00:00:00Z", "$lt": "2026-11-02"}})

    # When the attribute is a datetime: aware in another zone, naive (UTC), or a date
    paris = timezone(timedelta(hours=1))
    inside_aware = datetime(2026, 11, 1, 12, 0, tzinfo=paris)
    before_aware = datetime(2026, 11, 1, 0, 30, tzinfo=paris)  # 2026-10-31T23:30Z
    inside_naive = datetime(2026, 11, 1, 23, 59)

    # Then it compares as an instant
    assert compiled({"now": inside_aware}) is True
    assert compiled({"now": before_aware}) is False
    assert compiled({"now": inside_naive}) is True
    assert compiled({"now": date(2026, 11, 1)}) is True
    assert compiled({"now": datetime(2026, 11, 2, tzinfo=UTC)}) is False


def test_evaluate__non_date_strings__keep_plain_string_order() -> None:
    # Given an ISO operand and a non-date string attribute, and plain string operands
    # When evaluated
    # Then plain (code point) string order applies, as the suite requires
    assert evaluate({"t": {"$gt": "2026-01-01"}}, {"t": "tomorrow"}) is True
    assert evaluate({"t": {"$lt": "2026-01-01"}}, {"t": "2026-13-45"}) is False  # not a date
    assert evaluate({"w": {"$gt": "alphabet", "$lt": "zebra"}}, {"w": "always"}) is True


def test_evaluate__datetime_attribute_against_non_date_string__false() -> None:
    # Given a datetime attribute and a plain-string operand
    # When ordered
    # Then it never matches (no conversion between a datetime and arbitrary text)
    assert evaluate({"t": {"$gt": "abc"}}, {"t": datetime(2026, 1, 1, tzinfo=UTC)}) is False
    assert evaluate({"t": {"$gt": 5}}, {"t": datetime(2026, 1, 1, tzinfo=UTC)}) is False


# --- Strict typing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "attributes", "expected"),
    [
        ({"x": 1}, {"x": True}, False),
        ({"x": True}, {"x": 1}, False),
        ({"x": {"$eq": 1}}, {"x": True}, False),
        ({"x": {"$ne": 0}}, {"x": False}, True),
        ({"x": {"$in": [1, 2]}}, {"x": True}, False),
        ({"x": {"$in": [True]}}, {"x": 1}, False),
        ({"x": {"$in": [True]}}, {"x": True}, True),
        ({"x": {"$in": [1]}}, {"x": [True, 0]}, False),
        ({"x": {"$in": [1]}}, {"x": [True, 1]}, True),
        ({"x": {"$nin": [0]}}, {"x": False}, True),
        ({"x": {"$gt": 0}}, {"x": True}, False),
        ({"x": {"$lte": 1}}, {"x": False}, False),
        ({"x": {"$type": "number"}}, {"x": True}, False),
        ({"x": {"$type": "boolean"}}, {"x": True}, True),
        ({"x": {"$type": "number"}}, {"x": 1.5}, True),
        ({"x": [1, 0]}, {"x": [True, False]}, False),
        ({"x": {"a": 1}}, {"x": {"a": True}}, False),
        ({"x": 1}, {"x": 1.0}, True),
        ({"x": {"a": 1, "b": 2}}, {"x": {"b": 2, "a": 1}}, True),
        ({"x": {"$all": [1]}}, {"x": [True]}, False),
        ({"x": {"$size": 1}}, {"x": [True]}, True),
        ({"x": {"$eq": [1, "a"]}}, {"x": [1, "a"]}, True),
        ({"x": {"$inGroup": "g"}}, {"x": True}, False),
        ({"x": {"$inGroup": "g"}}, {"x": 1}, True),
    ],
)
def test_evaluate__booleans_and_numbers_mixed__never_equal(condition, attributes, expected) -> None:
    # Given a condition mixing booleans and numbers (Python says True == 1; JSON does not)
    # When evaluated
    result = evaluate(condition, attributes, {"g": [1, "a"]})

    # Then booleans and numbers are distinct types
    assert result is expected


@pytest.mark.parametrize(
    "operand", [{"$gt": -10}, {"$lt": 10}, {"$gte": ""}, {"$lte": "z"}, {"$vlt": "1.0.0"}]
)
@pytest.mark.parametrize("attributes", [{}, {"age": None}], ids=["missing", "null"])
def test_evaluate__missing_attribute_and_ordering__never_matches(operand, attributes) -> None:
    # Given an ordering operator on numbers, strings or versions
    # When the attribute is missing or null
    # Then it does not match (JavaScript would treat null as 0)
    assert evaluate({"age": operand}, attributes) is False


def test_compile__saved_groups_at_call_time__override_compile_time() -> None:
    # Given a condition compiled with one set of saved groups
    compiled = compile_condition({"id": {"$inGroup": "beta"}}, {"beta": ["u1"]})

    # When called without groups, and with other groups (plain list and GrowthBook's typed form)
    # Then the call-time groups replace the compile-time ones for that call only
    assert compiled({"id": "u1"}) is True
    assert compiled({"id": "u1"}, {"beta": ["u2"]}) is False
    assert compiled({"id": "u2"}, {"beta": {"type": "list", "values": ["u2"]}}) is True
    assert compiled({"id": "u1"}, {}) is False
    assert compiled({"id": "u1"}) is True


def test_compile__unknown_saved_group_kind__neither_in_nor_out() -> None:
    # Given a saved group of a kind the engine does not know
    groups = {"g": {"type": "condition", "condition": {"x": 1}}}

    # When $inGroup and $notInGroup consult it
    # Then both are false
    assert evaluate({"id": {"$inGroup": "g"}}, {"id": 1}, groups) is False
    assert evaluate({"id": {"$notInGroup": "g"}}, {"id": 1}, groups) is False


def test_compile__array_index_and_length_paths__read_like_javascript() -> None:
    # Given paths through arrays
    attributes = {"cart": {"items": [{"sku": "A"}, {"sku": "B"}]}}

    # When evaluated
    # Then numeric segments index and "length" counts
    assert evaluate({"cart.items.1.sku": "B"}, attributes) is True
    assert evaluate({"cart.items.length": 2}, attributes) is True
    assert evaluate({"cart.items.2.sku": {"$exists": True}}, attributes) is False
    assert evaluate({"cart.items.01.sku": {"$exists": True}}, attributes) is False


def test_compile__broken_conditions__never_match() -> None:
    # Given conditions the evaluator cannot run as written
    broken = [
        {"$or": {"a": 1}},
        {"$and": [1]},
        {"a": {"$bogus": 1}},
        {"$not": {"a": {"$bogus": 1}}},
        {"a": {"$elemMatch": 3}},
        {"a": {"$regex": 3}},
        {"": 1},
        "not a condition",
    ]
    for condition in broken:
        # When evaluated
        # Then it never matches, and does not raise
        assert compile_condition(condition)({"a": 1}) is False, condition


# --- Validation -----------------------------------------------------------------------------------


def test_validate__valid_condition__no_errors() -> None:
    # Given a condition using most operators correctly
    condition = {
        "country": {"$in": ["FR", "DE"]},
        "device": "mobile",
        "profile.rfm.segment": {"$nin": ["lost"]},
        "$or": [{"appVersion": {"$vgte": "1.2.0"}}, {"$not": {"beta": True}}],
        "segments": {"$elemMatch": {"$eq": "vip"}, "$size": {"$gt": 0}},
        "orders": {"$elemMatch": {"total": {"$gte": 100}}},
        "email": {"$regexi": "@example\\.com$", "$exists": True, "$type": "string"},
        "tags": {"$all": ["a", {"$regex": "^b"}]},
        "request.time": {"$gte": "2026-11-01T00:00:00Z"},
        "id": {"$notInGroup": "staff"},
        "$nor": [],
    }

    # When validated
    # Then there are no errors
    assert validate_condition(condition) == []


def test_validate__every_problem__reported_with_its_path() -> None:
    # Given a condition with many faults at different depths
    condition = {
        "$or": [{"ok": 1}, {"country": {"$in": "FR"}}],
        "father.age": {"$gt": True},
        "pets": {"$elemMatch": {"name": {"$regx": "x"}}},
        "tags": {"$size": "3", "$exists": "yes"},
        "kind": {"$type": "integer"},
        "v": {"$vgte": 1.2},
        "g": {"$inGroup": ["a"]},
        "mixed": {"$gt": 1, "plain": 2},
        "$and": "nope",
        "deep": {"$not": {"$all": 5}},
        "$gt": 5,
        "a..b": 1,
        "n": {"$lt": float("inf")},
        "r": {"$regex": "[unclosed"},
        "s": {"$or": [{"x": 1}]},
    }

    # When validated
    errors = validate_condition(condition)

    # Then each fault is reported once, where it is
    assert [e.path for e in errors] == [
        "$.$or[1].country.$in",
        "$['father.age'].$gt",
        "$.pets.$elemMatch.name.$regx",
        "$.tags.$size",
        "$.tags.$exists",
        "$.kind.$type",
        "$.v.$vgte",
        "$.g.$inGroup",
        "$.mixed",
        "$.$and",
        "$.deep.$not.$all",
        "$.$gt",
        "$['a..b']",
        "$.n.$lt",
        "$.r.$regex",
        "$.s.$or",
    ]
    assert errors[0] == ConditionError("$.$or[1].country.$in", "$in needs a list of values")
    assert errors[2].message == 'unknown operator "$regx"'
    assert "not a valid regular expression" in errors[-2].message


def test_validate__not_an_object__one_error_at_root() -> None:
    # Given a condition that is a list
    # When validated
    # Then one error at the root
    assert validate_condition([{"a": 1}]) == [
        ConditionError("$", "must be an object of attribute conditions")
    ]


def test_validate__empty_logical_lists__valid() -> None:
    # Given empty $and/$or/$nor (the suite: an empty $or and an empty $and pass)
    # When validated
    # Then they are valid, with the suite's meaning
    assert validate_condition({"$or": [], "$and": [], "$nor": []}) == []
    assert evaluate({"$or": []}, {}) is True
    assert evaluate({"$nor": []}, {}) is False


def test_condition_error__frozen_and_printable() -> None:
    # Given an error
    error = ConditionError("$.a.$in", "$in needs a list of values")

    # When it is printed or changed
    # Then it reads "path: message" and cannot change
    assert str(error) == "$.a.$in: $in needs a list of values"
    with pytest.raises(AttributeError):
        error.path = "$"  # type: ignore[misc]


# --- Descriptions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "sentence"),
    [
        (
            {"country": {"$in": ["FR", "DE"]}, "device": "mobile"},
            "country is one of FR, DE and device is mobile",
        ),
        ({}, "everyone"),
        ({"$or": []}, "everyone"),
        ({"$nor": []}, "no one"),
        ({"$or": [{"a": 1}, {"b": "x"}]}, "either a is 1 or b is x"),
        (
            {"a": 1, "$or": [{"b": 2, "c": 3}, {"d": 4}]},
            "a is 1 and (either (b is 2 and c is 3) or d is 4)",
        ),
        ({"$nor": [{"a": 1}, {"b": 2}]}, "neither a is 1 nor b is 2"),
        ({"$not": {"a": 1, "b": 2}}, "not (a is 1 and b is 2)"),
        ({"a": {"$not": {"$gt": 3}}}, "not (a is greater than 3)"),
        ({"email": {"$exists": True}}, "email is set"),
        ({"email": {"$exists": False}}, "email is not set"),
        ({"userId": None}, "userId is not set"),
        ({"ua": {"$regex": "Mobile|Tablet"}}, "ua matches /Mobile|Tablet/"),
        ({"ua": {"$regexi": "bot"}}, "ua matches /bot/i"),
        ({"appVersion": {"$vgte": "1.2.0"}}, "appVersion is version ≥ 1.2.0"),
        (
            {"v": {"$vlt": "2.0.0", "$vne": "1.5.0"}},
            "v is version < 2.0.0 and v is not version 1.5.0",
        ),
        ({"id": {"$inGroup": "beta"}}, "id is in group beta"),
        ({"id": {"$notInGroup": "staff"}}, "id is not in group staff"),
        ({"age": {"$gte": 18, "$lt": 65}}, "age is at least 18 and age is less than 65"),
        (
            {"request.time": {"$gt": "2026-11-01T00:00:00Z"}},
            "request.time is after 2026-11-01T00:00:00Z",
        ),
        ({"day": {"$lte": "2026-11-01"}}, "day is on or before 2026-11-01"),
        ({"country": {"$nin": ["US"]}}, "country is not one of US"),
        ({"country": {"$ini": ["fr"]}}, "country is one of fr (ignoring case)"),
        ({"tags": {"$all": ["a", "b"]}}, "tags contains all of a, b"),
        ({"tags": {"$size": 3}}, "tags has 3 items"),
        ({"tags": {"$size": {"$gt": 2}}}, "the number of items in tags is greater than 2"),
        ({"tags": {"$elemMatch": {"$eq": "vip"}}}, "tags has an item where the item is vip"),
        (
            {"orders": {"$elemMatch": {"total": {"$gt": 100}}}},
            "orders has an item where total is greater than 100",
        ),
        ({"a": {"$type": "array"}}, "a is an array"),
        ({"flag": False, "n": {"$ne": 0}}, "flag is false and n is not 0"),
        ({"name": ""}, 'name is ""'),
        ({"name": {"$regx": "x"}}, "name has unknown operator $regx x"),
    ],
)
def test_describe__condition__reads_as_english(condition, sentence) -> None:
    # Given a condition
    # When described
    # Then the sentence reads as expected
    assert describe_condition(condition) == sentence


# --- Fields ---------------------------------------------------------------------------------------


def test_condition_fields__every_path_read__through_logic_not_into_elem_match() -> None:
    # Given a condition reading attributes at several depths
    condition = {
        "country": "FR",
        "profile.rfm.segment": {"$in": ["vip"]},
        "$or": [{"request.path": {"$regex": "^/shop"}}, {"$not": {"profile.visits": {"$gt": 3}}}],
        "$and": [{"$nor": [{"device": "tv"}]}],
        "orders": {"$elemMatch": {"total": {"$gt": 100}, "$or": [{"sku": "A"}]}},
        "tags": {"$not": {"$elemMatch": {"$eq": "x"}}},
    }

    # When its fields are listed
    fields = condition_fields(condition)

    # Then exactly the top-level attribute paths appear (items' fields are not attributes)
    assert fields == {
        "country",
        "profile.rfm.segment",
        "request.path",
        "profile.visits",
        "device",
        "orders",
        "tags",
    }


def test_condition_fields__empty_and_logic_only__no_fields() -> None:
    # Given conditions that read nothing
    # When listed
    # Then there are no fields
    assert condition_fields({}) == set()
    assert condition_fields({"$or": [], "$and": [{}]}) == set()


# --- Caching and purity --------------------------------------------------------------------------


def test_evaluate__key_order__shares_one_compiled_form() -> None:
    # Given the same condition written with keys in two orders
    first = {"a": 1, "b": {"$gt": 1, "$lt": 5}}
    second = {"b": {"$lt": 5, "$gt": 1}, "a": 1}

    # When both are evaluated
    # Then they agree (key order never changes a result)
    assert evaluate(first, {"a": 1, "b": 3}) is evaluate(second, {"a": 1, "b": 3}) is True


def test_import__rules_package__imports_no_django_or_celery() -> None:
    # Given a fresh interpreter (the top-level package, imported alone)
    code = (
        "import sys\n"
        "import rules as r\n"
        "assert r.evaluate({'a': {'$regex': '^x'}}, {'a': 'xy'})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'kombu'))\n"
        "print(bad)\n"
    )

    # When rules is imported and used there
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )

    # Then neither Django nor Celery was imported
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
