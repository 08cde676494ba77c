"""Property-based tests: the compiled engine against a plain recursive interpreter of the JSON.

The interpreter below is the "interpreted" form of the language, written for obviousness rather
than speed and sharing no code with the engine (except RE2, for the regex policy): if the two
disagree on any generated condition and attribute set, one of them is wrong.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import re2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rules import (
    ConditionError,
    compile_condition,
    evaluate,
    validate_condition,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- Reference interpreter ------------------------------------------------------------------------

LOGIC = ("$and", "$or", "$nor")
KNOWN_OPS = {
    "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$ini", "$nini", "$all", "$alli",
    "$elemMatch", "$size", "$exists", "$type", "$regex", "$regexi", "$not",
    "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte", "$inGroup", "$notInGroup",
}  # fmt: skip


def is_ops(value: Any) -> bool:
    return isinstance(value, dict) and all(str(k).startswith("$") for k in value)


def is_broken(condition: Any) -> bool:
    """Faults that make the engine refuse the whole condition (it then never matches)."""
    if not isinstance(condition, dict):
        return True
    for key, value in condition.items():
        if key in LOGIC:
            if not isinstance(value, list) or any(is_broken(c) for c in value):
                return True
        elif key == "$not":
            if is_broken(value):
                return True
        elif not isinstance(key, str) or key == "" or value_broken(value):
            return True
    return False


def value_broken(value: Any) -> bool:
    if not is_ops(value):
        return False
    for op, arg in value.items():
        if op not in KNOWN_OPS:
            return True
        if op in ("$regex", "$regexi"):
            if not isinstance(arg, str) or len(arg) > 1024:
                return True
            try:
                re2.compile(arg)
            except re2.error:
                return True
        if op == "$elemMatch":
            if not isinstance(arg, dict):
                return True
            on_items = is_ops(arg) and not any(k in LOGIC for k in arg)
            if (value_broken(arg) if on_items else is_broken(arg)) is True:
                return True
        if op in ("$not", "$size") and value_broken(arg):
            return True
        if op in ("$all", "$alli") and isinstance(arg, list) and any(map(value_broken, arg)):
            return True
    return False


def jtype(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, int | float):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list | tuple):
        return "array"
    if isinstance(x, dict):
        return "object"
    return "unknown"


def jeq(a: Any, b: Any) -> bool:
    if jtype(a) != jtype(b):
        return False
    if jtype(a) == "array":
        return len(a) == len(b) and all(jeq(x, y) for x, y in zip(a, b, strict=False))
    if jtype(a) == "object":
        return set(a) == set(b) and all(jeq(a[k], b[k]) for k in a)
    return a == b


ISO = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?")


def iso(text: str) -> datetime | None:
    if not ISO.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def pad(version: str) -> str:
    version = re.sub(r"^v|\+.*$", "", version, flags=re.S)
    parts = re.split(r"[-.]", version)
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5) if re.fullmatch(r"[0-9]+", p) else p for p in parts)


def utf16(s: str) -> bytes:
    return s.encode("utf-16-be", "surrogatepass")


CMP = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}
VCMP = {
    "$veq": lambda a, b: a == b,
    "$vgt": lambda a, b: a > b,
    "$vgte": lambda a, b: a >= b,
    "$vlt": lambda a, b: a < b,
    "$vlte": lambda a, b: a <= b,
}


def get_path(attributes: Any, path: str) -> Any:
    current = attributes
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part == "length":
            current = len(current)
        elif isinstance(current, list) and re.fullmatch(r"0|[1-9][0-9]*", part):
            current = current[int(part)] if int(part) < len(current) else None
        else:
            return None
    return current


def interpret(condition: Any, attributes: Any, groups: dict | None = None) -> bool:
    if is_broken(condition):
        return False
    return cond(condition, attributes, groups or {})


def cond(condition: dict, attributes: Any, groups: dict) -> bool:
    results = []
    for key, value in condition.items():
        if key == "$and":
            results.append(all(cond(c, attributes, groups) for c in value))
        elif key == "$or":
            results.append(not value or any(cond(c, attributes, groups) for c in value))
        elif key == "$nor":
            results.append(not (not value or any(cond(c, attributes, groups) for c in value)))
        elif key == "$not":
            results.append(not cond(value, attributes, groups))
        else:
            results.append(val(value, get_path(attributes, key), groups))
    return all(results)


def val(expected: Any, actual: Any, groups: dict, fold: bool = False) -> bool:
    if is_ops(expected):
        return all(op(k, v, actual, groups) for k, v in expected.items())
    if fold and isinstance(expected, str) and isinstance(actual, str):
        return expected.lower() == actual.lower()
    return jeq(expected, actual)


def isin(values: list, actual: Any, fold: bool = False) -> bool:
    def f(x: Any) -> Any:
        return x.lower() if fold and isinstance(x, str) else x

    items = actual if isinstance(actual, list) else [actual]
    return any(jeq(f(x), f(y)) for x in items for y in values)


def op(name: str, arg: Any, actual: Any, groups: dict) -> bool:
    if name == "$eq":
        return jeq(arg, actual)
    if name == "$ne":
        return not jeq(arg, actual)
    if name in CMP:
        if jtype(arg) == "number":
            return jtype(actual) == "number" and CMP[name](actual, arg)
        if isinstance(arg, str):
            if isinstance(actual, str):
                a, b = iso(actual), iso(arg)
                if a is not None and b is not None:
                    return CMP[name](a, b)
                return CMP[name](utf16(actual), utf16(arg))
            if isinstance(actual, datetime) and iso(arg) is not None:
                moment = actual if actual.tzinfo else actual.replace(tzinfo=UTC)
                return CMP[name](moment, iso(arg))
        return False
    if name in ("$in", "$nin", "$ini", "$nini"):
        if not isinstance(arg, list):
            return False
        found = isin(arg, actual, fold=name in ("$ini", "$nini"))
        return found if name in ("$in", "$ini") else not found
    if name in ("$all", "$alli"):
        if not isinstance(arg, list) or not isinstance(actual, list):
            return False
        return all(any(val(e, x, groups, name == "$alli") for x in actual) for e in arg)
    if name == "$elemMatch":
        if not isinstance(actual, list):
            return False
        if is_ops(arg) and not any(k in LOGIC for k in arg):
            return any(val(arg, x, groups) for x in actual)
        return any(cond(arg, x if isinstance(x, dict) else {}, groups) for x in actual)
    if name == "$size":
        return isinstance(actual, list) and val(arg, len(actual), groups)
    if name == "$exists":
        return (actual is not None) if arg else (actual is None)
    if name == "$type":
        return jtype(actual) == arg
    if name in ("$regex", "$regexi"):
        flags = re.IGNORECASE if name == "$regexi" else 0
        return isinstance(actual, str) and re.search(arg, actual, flags) is not None
    if name == "$not":
        return not val(arg, actual, groups)
    if name == "$vne":
        return not isinstance(arg, str) or not isinstance(actual, str) or pad(actual) != pad(arg)
    if name in VCMP:
        return (
            isinstance(arg, str) and isinstance(actual, str) and VCMP[name](pad(actual), pad(arg))
        )
    if name in ("$inGroup", "$notInGroup"):
        if not isinstance(arg, str):
            return False
        found = isin(groups.get(arg, []), actual)
        return found if name == "$inGroup" else not found
    raise AssertionError(f"unreachable: {name}")


# --- Strategies -----------------------------------------------------------------------------------

FIELDS = ["a", "b", "n", "tags", "c.d", "c.e.f", "v", "t", "items"]
STRINGS = ["", "a", "A", "b", "ab", "x y", "1.2.3", "2.0.0", "1.10.0-beta", "v2.0.0", "é", "😀"]
DATES = ["2026-01-01", "2026-06-01T12:00:00Z", "2025-12-31T23:00:00-02:00", "2026-06-01T12:00"]
PATTERNS = ["^a", "b$", "a|b", "[0-9]+", "^x y$", "A", "", "é", r"\d\.\d"]
VERSIONS = ["1.2.3", "2.0.0", "1.10.0-beta", "v2.0.0", "1.2.3-rc.1", "10.0.0"]
GROUPS = {"g1": [1, "a", True], "g2": ["b", 2.0, None]}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from([0.0, 1.0, 1.5, -2.5]),
    st.sampled_from(STRINGS + DATES),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["k", "l", "m"]), inner, max_size=2)
    ),
    max_leaves=5,
)
scalar_lists = st.lists(scalars, max_size=4)
numbers_or_strings = st.one_of(
    st.integers(-2, 3), st.sampled_from([1.5, -0.5]), st.sampled_from(STRINGS + DATES)
)


def _ops_entries() -> st.SearchStrategy:
    inner = value_conditions
    return st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne"]), json_values),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), numbers_or_strings),
        st.tuples(st.sampled_from(["$in", "$nin", "$ini", "$nini"]), scalar_lists),
        st.tuples(st.sampled_from(["$all", "$alli"]), st.lists(scalars | inner, max_size=3)),
        st.tuples(st.just("$elemMatch"), operator_objects_st | item_conditions),
        st.tuples(
            st.just("$size"), st.integers(0, 3) | st.builds(lambda n: {"$gt": n}, st.integers(0, 3))
        ),
        st.tuples(st.just("$exists"), st.booleans()),
        st.tuples(
            st.just("$type"),
            st.sampled_from(["string", "number", "boolean", "null", "object", "array"]),
        ),
        st.tuples(st.sampled_from(["$regex", "$regexi"]), st.sampled_from(PATTERNS)),
        st.tuples(st.just("$not"), inner),
        st.tuples(
            st.sampled_from(["$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"]),
            st.sampled_from(VERSIONS),
        ),
        st.tuples(
            st.sampled_from(["$inGroup", "$notInGroup"]), st.sampled_from(["g1", "g2", "nope"])
        ),
    )


#: Literal values (never an operator object, except {} which means "anything") or operators.
literal_values = json_values.filter(lambda v: not is_ops(v) or v == {})
operator_objects_st = st.deferred(
    lambda: st.lists(_ops_entries(), min_size=1, max_size=3, unique_by=lambda kv: kv[0]).map(dict)
)
#: A condition on each item's fields; one whose keys are all operators other than $and/$or/$nor
#: (such as {"$not": ...}) would instead apply to each item itself, so those are left out.
item_conditions = st.deferred(
    lambda: conditions.filter(lambda c: not is_ops(c) or any(k in LOGIC for k in c))
)
value_conditions = st.deferred(lambda: st.one_of(literal_values, operator_objects_st))
conditions = st.deferred(
    lambda: st.lists(
        st.one_of(
            st.tuples(st.sampled_from(FIELDS), value_conditions),
            st.tuples(st.sampled_from(FIELDS), value_conditions),
            st.tuples(st.sampled_from(LOGIC), st.lists(conditions, max_size=3)),
            st.tuples(st.just("$not"), conditions),
        ),
        max_size=3,
        unique_by=lambda kv: kv[0],
    ).map(dict)
)


values = st.one_of(
    scalars,
    st.sampled_from(VERSIONS),
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1)),
    st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ),
    st.lists(scalars, max_size=4),
)
attributes = st.fixed_dictionaries(
    {},
    optional={
        "a": values,
        "b": values,
        "n": st.integers(-3, 4) | st.floats(-3, 4, allow_nan=False),
        "tags": st.lists(scalars, max_size=4),
        "c": st.fixed_dictionaries(
            {}, optional={"d": values, "e": st.fixed_dictionaries({}, optional={"f": values})}
        ),
        "v": st.sampled_from(VERSIONS) | values,
        "t": st.sampled_from(DATES) | values,
        "items": st.lists(
            st.fixed_dictionaries({}, optional={"a": values, "b": values}) | scalars, max_size=3
        ),
    },
)
group_modes = st.sampled_from(["none", "compile", "call"])


def run_compiled(condition: Any, attrs: Any, mode: str) -> bool:
    if mode == "compile":
        return compile_condition(condition, GROUPS)(attrs)
    if mode == "call":
        return compile_condition(condition)(attrs, GROUPS)
    return compile_condition(condition)(attrs)


# --- Properties -----------------------------------------------------------------------------------


@SETTINGS
@given(condition=conditions, attrs=attributes, mode=group_modes)
def test_compiled__generated_condition__agrees_with_interpreter(condition, attrs, mode) -> None:
    # Given a generated condition, attribute set and way of passing saved groups
    groups = GROUPS if mode != "none" else None

    # When both the compiled engine and the reference interpreter evaluate it
    compiled = run_compiled(condition, attrs, mode)
    interpreted = interpret(condition, attrs, groups)

    # Then they agree, and the answer is a real bool
    assert compiled is interpreted


@SETTINGS
@given(condition=conditions, attrs=attributes)
def test_compiled__not__negates(condition, attrs) -> None:
    # Given a generated condition (always valid, so never refused as a whole)
    plain = compile_condition(condition)(attrs)

    # When it is wrapped in $not
    negated = compile_condition({"$not": condition})(attrs)

    # Then the result is the opposite
    assert negated is (not plain)


@SETTINGS
@given(condition=conditions, attrs=attributes)
def test_compiled__single_item_and_or__equal_the_item(condition, attrs) -> None:
    # Given a generated condition
    plain = compile_condition(condition)(attrs)

    # When it is the only item of an $and, or of an $or
    in_and = compile_condition({"$and": [condition]})(attrs)
    in_or = compile_condition({"$or": [condition]})(attrs)

    # Then neither wrapper changes the result, nor does evaluate()'s cache
    assert in_and is plain
    assert in_or is plain
    assert evaluate(condition, attrs) is plain


@SETTINGS
@given(condition=conditions)
def test_validate__generated_condition__is_valid(condition) -> None:
    # Given a condition built only from valid parts
    # When it is validated
    errors = validate_condition(condition)

    # Then there is nothing to report
    assert errors == []


# --- Mutations ------------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")


def _step(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _PLAIN.match(key) else f"{path}['{key}']"


def operator_objects(condition: dict, path: str = "$") -> list[tuple[str, dict]]:
    """Every non-empty operator object on an attribute, reachable through logical operators."""
    found = []
    for key, value in condition.items():
        here = _step(path, key)
        if key in LOGIC:
            for index, sub in enumerate(value):
                found += operator_objects(sub, _step(here, index))
        elif key == "$not":
            found += operator_objects(value, here)
        elif is_ops(value) and value:
            found.append((here, value))
    return found


@SETTINGS
@given(condition=conditions, data=st.data())
def test_validate__unknown_operator_injected__reported_at_its_path(condition, data) -> None:
    # Given a valid condition and one of its operator objects
    mutated = copy.deepcopy(condition)
    targets = operator_objects(mutated)
    assume(targets)
    path, target = data.draw(st.sampled_from(targets))

    # When an unknown operator is added to that object
    target["$bogus"] = 1

    # Then validation reports exactly that, at exactly that path, and the engine refuses it
    assert validate_condition(mutated) == [
        ConditionError(f"{path}.$bogus", 'unknown operator "$bogus"')
    ]
    assert compile_condition(mutated)({}) is False


@SETTINGS
@given(
    condition=conditions,
    data=st.data(),
    operand=st.one_of(scalars, st.dictionaries(st.just("k"), scalars)),
)
def test_validate__in_given_a_non_list__reported_at_its_path(condition, data, operand) -> None:
    # Given a valid condition and one of its operator objects
    mutated = copy.deepcopy(condition)
    targets = operator_objects(mutated)
    assume(targets)
    path, target = data.draw(st.sampled_from(targets))

    # When its $in is set (or replaced) to something that is not a list
    target["$in"] = operand

    # Then validation reports exactly that
    assert validate_condition(mutated) == [
        ConditionError(f"{path}.$in", "$in needs a list of values")
    ]
