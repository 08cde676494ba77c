"""Compiles a JSON condition once into nested closures; evaluation never looks at the JSON again.

Shapes that dominate real conditions get dedicated closures (see ``_conjunction``, ``_equals``,
``_ordering`` and ``_Membership``) because this runs on every request: a top-level object of field
clauses becomes a tuple of ``(key, predicate)`` pairs checked in order with ``dict.get``; ``$in``
over scalars becomes frozenset membership, with booleans kept apart from 0 and 1.

A condition the evaluator cannot run as written - an unknown operator, a regex refused by the policy
in :mod:`rules.regex`, ``$and`` given something other than a list of conditions -
compiles to a function that never matches, wherever the fault sits: a ``$not`` above it cannot turn
a broken condition into a match. Operand types the GrowthBook suite gives a meaning to (``$in`` with
a non-list is false) keep that meaning locally.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from time import time
from typing import Any

from .operators import (
    ALL,
    GROUPS,
    LOGICAL_LISTS,
    MEMBERSHIP,
    ORDERING,
    REGEX,
    VERSION,
    elem_match_on_items,
    is_operator_object,
)
from .regex import PatternError, compile_matcher
from .timing import CLOCK, Clock, as_epoch, instant_seconds, relative_offset
from .values import (
    ARRAY_TYPES,
    PathView,
    is_number,
    js_truthy,
    json_type,
    padded_version,
    parse_instant,
    strict_equal,
    to_instant,
    utf16_key,
)

Attributes = Mapping[str, Any]
SavedGroups = Mapping[str, Any]
CompiledCondition = Callable[..., bool]
_Predicate = Callable[[Any], bool]

#: Saved groups passed at call time; ``None`` means "use those given at compile time".
_CALL_GROUPS: ContextVar[SavedGroups | None] = ContextVar("mosaic_rules_saved_groups", default=None)

_EMPTY: Mapping[str, Any] = {}


class _BrokenConditionError(Exception):
    """Raised while compiling a condition that cannot be evaluated as written."""


def _always(
    attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
) -> bool:
    return True


def _never(
    attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
) -> bool:
    return False


def _true_pred(value: Any) -> bool:
    return True


def _false_pred(value: Any) -> bool:
    return False


class _Compiler:
    __slots__ = ("saved_groups", "uses_groups", "uses_time")

    def __init__(self, saved_groups: SavedGroups | None) -> None:
        self.saved_groups = saved_groups
        self.uses_groups = False
        self.uses_time = False


def compile_condition(
    condition: Mapping[str, Any], saved_groups: SavedGroups | None = None
) -> CompiledCondition:
    """Compile ``condition`` into ``fn(attributes, saved_groups=None) -> bool``.

    ``saved_groups`` maps a group id to its list of members (or to GrowthBook's
    ``{"type": "list", "values": [...]}``). Given here, memberships are precomputed into frozensets.
    Given to the compiled function, they replace the compile-time ones for that call; the lists are
    then treated as immutable snapshots (a membership index is kept per list object).
    """
    compiler = _Compiler(saved_groups)
    try:
        root = _compile_condition(condition, compiler)
    except (_BrokenConditionError, RecursionError):
        return _never
    if compiler.uses_groups:
        root = _with_groups(root)
    if compiler.uses_time:
        root = _with_clock(root)
    return root


def _with_groups(root: CompiledCondition) -> CompiledCondition:
    def with_groups(
        attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
    ) -> bool:
        if saved_groups is None:
            return root(attributes)
        token = _CALL_GROUPS.set(saved_groups)
        try:
            return root(attributes)
        finally:
            _CALL_GROUPS.reset(token)

    return with_groups


def _with_clock(root: CompiledCondition) -> CompiledCondition:
    """A time-dependent condition reads ``now`` from the clock: the one given here, else the one
    an enclosing ``evaluation_clock`` set, else the wall clock at the call."""

    def with_clock(
        attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
    ) -> bool:
        if now is None:
            if CLOCK.get() is not None:
                return root(attributes, saved_groups)
            now = time()
        token = CLOCK.set(Clock(as_epoch(now)))
        try:
            return root(attributes, saved_groups)
        finally:
            CLOCK.reset(token)

    with_clock.time_dependent = True  # type: ignore[attr-defined]
    return with_clock


def is_time_dependent(compiled: CompiledCondition) -> bool:
    """Whether a compiled condition's answer can change with the clock alone ($ago/$ahead)."""
    return getattr(compiled, "time_dependent", False)


@lru_cache(maxsize=2048)
def _compile_canonical(key: str) -> CompiledCondition:
    return compile_condition(json.loads(key))


def evaluate(
    condition: Mapping[str, Any],
    attributes: Attributes,
    saved_groups: SavedGroups | None = None,
    now: Any = None,
) -> bool:
    """Evaluate ``condition`` against ``attributes``; compiled forms are kept in a bounded LRU
    keyed by the condition's canonical JSON (sorted keys - key order never changes a result)."""
    try:
        key = json.dumps(condition, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return compile_condition(condition)(attributes, saved_groups, now)
    return _compile_canonical(key)(attributes, saved_groups, now)


# --- Conditions (functions of the attribute mapping) ---------------------------------------------


def _compile_condition(condition: Any, compiler: _Compiler) -> CompiledCondition:
    if not isinstance(condition, Mapping):
        raise _BrokenConditionError("a condition must be an object")
    fields: list[tuple[str, _Predicate]] = []
    logicals: list[CompiledCondition] = []
    for key, value in condition.items():
        if key in LOGICAL_LISTS:
            if not isinstance(value, list):
                raise _BrokenConditionError(f"{key} needs a list of conditions")
            subs = [_compile_condition(sub, compiler) for sub in value]
            if key == "$and":
                logicals.append(_all_of(subs))
            elif key == "$or":
                logicals.append(_any_of(subs))
            else:
                logicals.append(_negate_condition(_any_of(subs)))
        elif key == "$not":
            logicals.append(_negate_condition(_compile_condition(value, compiler)))
        elif isinstance(key, str) and key:
            fields.append(_field(key, _compile_value(value, compiler)))
        else:
            raise _BrokenConditionError("attribute paths must be non-empty strings")
    return _conjunction(fields, logicals)


def _conjunction(
    fields: list[tuple[str, _Predicate]], logicals: list[CompiledCondition]
) -> CompiledCondition:
    # Field clauses run before logical ones: evaluation is pure, so order only affects speed, and
    # a field clause is the cheaper of the two.
    if not logicals:
        if not fields:
            return _always
        if len(fields) == 1:
            ((k0, p0),) = fields

            def one(
                attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
            ) -> bool:
                return p0(attributes.get(k0))

            return one
        if len(fields) == 2:
            (k0, p0), (k1, p1) = fields

            def two(
                attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
            ) -> bool:
                return p0(attributes.get(k0)) and p1(attributes.get(k1))

            return two
        pairs = tuple(fields)

        def many(
            attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
        ) -> bool:
            get = attributes.get
            for key, pred in pairs:  # noqa: SIM110 - a loop beats all(<generator>) here
                if not pred(get(key)):
                    return False
            return True

        return many
    if not fields and len(logicals) == 1:
        return logicals[0]
    pairs = tuple(fields)
    clauses = tuple(logicals)

    def mixed(
        attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
    ) -> bool:
        get = attributes.get
        for key, pred in pairs:
            if not pred(get(key)):
                return False
        for clause in clauses:  # noqa: SIM110 - a loop beats all(<generator>) here
            if not clause(attributes):
                return False
        return True

    return mixed


def _all_of(subs: list[CompiledCondition]) -> CompiledCondition:
    if not subs:
        return _always
    if len(subs) == 1:
        return subs[0]
    clauses = tuple(subs)

    def all_of(
        attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
    ) -> bool:
        for clause in clauses:  # noqa: SIM110 - a loop beats all(<generator>) here
            if not clause(attributes):
                return False
        return True

    return all_of


def _any_of(subs: list[CompiledCondition]) -> CompiledCondition:
    # An empty $or passes (GrowthBook semantics), so an empty $nor fails.
    if not subs:
        return _always
    if len(subs) == 1:
        return subs[0]
    if len(subs) == 2:
        a, b = subs

        def either(
            attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
        ) -> bool:
            return a(attributes) or b(attributes)

        return either
    clauses = tuple(subs)

    def any_of(
        attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
    ) -> bool:
        for clause in clauses:  # noqa: SIM110 - a loop beats any(<generator>) here
            if clause(attributes):
                return True
        return False

    return any_of


def _negate_condition(sub: CompiledCondition) -> CompiledCondition:
    def negated(
        attributes: Attributes, saved_groups: SavedGroups | None = None, now: Any = None
    ) -> bool:
        return not sub(attributes)

    return negated


# --- Attribute paths ------------------------------------------------------------------------------


def _step(value: Any, segment: str) -> Any:
    """One path segment: an object's key, or (as in JavaScript) an array's index or "length"."""
    if isinstance(value, PathView):
        return value.path_get((segment,))
    if isinstance(value, Mapping):
        return value.get(segment)
    if isinstance(value, ARRAY_TYPES):
        if segment == "length":
            return len(value)
        if segment.isascii() and segment.isdigit() and (segment == "0" or segment[0] != "0"):
            index = int(segment)
            return value[index] if index < len(value) else None
    return None


def _walk(value: Any, steps: tuple[tuple[str, tuple[str, ...]], ...]) -> Any:
    """Follow ``steps`` (each segment with the path's rest from it, precomputed at compile time);
    a ``PathView`` met on the way resolves that rest itself, in one call."""
    for segment, rest in steps:
        if value is None:
            return None
        if value.__class__ is dict:
            value = value.get(segment)
        elif isinstance(value, PathView):
            return value.path_get(rest)
        else:
            value = _step(value, segment)
    return value


def _field(path: str, pred: _Predicate) -> tuple[str, _Predicate]:
    """``(first segment, predicate on its value)``; deeper segments move into the predicate."""
    first, *rest = path.split(".")
    if not rest:
        return first, pred
    if len(rest) == 1:
        (second,) = rest

        def nested(value: Any) -> bool:
            if value.__class__ is dict:
                return pred(value.get(second))
            return pred(_step(value, second))

        return first, nested
    steps = tuple((segment, tuple(rest[i:])) for i, segment in enumerate(rest))

    def deep(value: Any) -> bool:
        return pred(_walk(value, steps))

    return first, deep


# --- Values (predicates on one attribute value) -------------------------------------------------


def _compile_value(
    condition_value: Any, compiler: _Compiler, ignore_case: bool = False
) -> _Predicate:
    if is_operator_object(condition_value):
        preds = [_compile_operator(op, arg, compiler) for op, arg in condition_value.items()]
        return _pred_all(preds)
    return _equals(condition_value, ignore_case)


def _pred_all(preds: list[_Predicate]) -> _Predicate:
    if not preds:
        return _true_pred
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds

        def both(value: Any) -> bool:
            return a(value) and b(value)

        return both
    chain = tuple(preds)

    def every(value: Any) -> bool:
        for pred in chain:  # noqa: SIM110 - a loop beats all(<generator>) here
            if not pred(value):
                return False
        return True

    return every


def _negate(pred: _Predicate) -> _Predicate:
    def negated(value: Any) -> bool:
        return not pred(value)

    return negated


def _equals(expected: Any, ignore_case: bool = False) -> _Predicate:
    cls = expected.__class__
    if cls is str:
        if ignore_case:
            folded = expected.lower()

            def equals_folded(value: Any) -> bool:
                return isinstance(value, str) and value.lower() == folded

            return equals_folded

        def equals_str(value: Any) -> bool:
            return value == expected

        return equals_str
    if expected is None:

        def is_null(value: Any) -> bool:
            return value is None

        return is_null
    if cls is bool:

        def is_bool(value: Any) -> bool:
            return value is expected

        return is_bool
    if cls is int or cls is float:

        def equals_number(value: Any) -> bool:
            # bool is an int subclass, and True == 1 in Python but not in JSON.
            return value == expected and value.__class__ is not bool

        return equals_number

    def equals_deep(value: Any) -> bool:
        return strict_equal(value, expected)

    return equals_deep


_COMPARE = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def _ordering(op: str, operand: Any) -> _Predicate:
    """``$gt/$gte/$lt/$lte``: numbers with numbers, strings with strings (as UTC instants when both
    are ISO-8601, or the attribute is a ``datetime``); anything else, a missing attribute included,
    is false. Never coerces a number to a string or back."""
    if is_number(operand):
        return _number_ordering(op, operand)
    compare = _COMPARE[op]
    if not isinstance(operand, str):
        return _false_pred
    instant = parse_instant(operand)
    if instant is not None:

        def time_order(value: Any) -> bool:
            if isinstance(value, str):
                other = parse_instant(value)
                # An ISO operand is ASCII, so code-point order equals JavaScript's UTF-16 order.
                return compare(value, operand) if other is None else compare(other, instant)
            other = to_instant(value)
            return other is not None and compare(other, instant)

        return time_order
    if operand.isascii():
        # Against an ASCII string, code-point order and UTF-16 order agree.
        def string_order(value: Any) -> bool:
            return isinstance(value, str) and compare(value, operand)

        return string_order
    operand_key = utf16_key(operand)

    def utf16_order(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        return (
            compare(value, operand) if value.isascii() else compare(utf16_key(value), operand_key)
        )

    return utf16_order


def _relative_ordering(op: str, operand: Mapping[str, Any], compiler: _Compiler) -> _Predicate:
    """``{"$gte": {"$ago": "30m"}}``: the attribute, an instant, compared with ``now - 30m``.

    The duration is parsed here, once; each call reads the clock. An attribute that is not an
    instant (missing, a non-date string, a boolean) never matches, as with plain ordering. The
    clause's answer flips when ``now`` crosses ``value - offset``: noted on a collecting clock.
    """
    offset = relative_offset(dict(operand))
    if offset is None:
        raise _BrokenConditionError(f'{op} needs a relative instant such as {{"$ago": "30m"}}')
    compiler.uses_time = True
    compare = _COMPARE[op]
    clock_var = CLOCK
    fromisoformat = datetime.fromisoformat

    def relative_order(value: Any) -> bool:
        if value is None:  # the common case for a profile that never did it: no clock read
            return False
        clock = clock_var.get()
        if clock is None:  # a sub-function called directly, outside its compiled root
            clock = Clock(time())
        if value.__class__ is str and len(value) >= 10 and value[4] == "-" and value[7] == "-":
            # Extended ISO-8601, as the aggregates store instants: the C parser, and a datetime
            # comparison with the clock's cached threshold (no conversion to a number).
            try:
                parsed = fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                threshold = clock.thresholds.get(offset) or clock.threshold(offset)
                if clock.collect and parsed >= threshold:
                    # value >= now + offset: the crossing (value - offset) is now or ahead.
                    clock.note(parsed.timestamp() - offset)
                return compare(parsed, threshold)
        instant = instant_seconds(value)
        if instant is None:
            return False
        if clock.collect:
            clock.note(instant - offset)
        return compare(instant, clock.now + offset)

    return relative_order


def _number_ordering(op: str, n: float) -> _Predicate:
    # One closure per operator: this is the hottest comparison, and a direct `>` beats a call to
    # operator.gt.
    if op == "$gt":

        def gt(value: Any) -> bool:
            cls = value.__class__
            if cls is int or cls is float:
                return value > n
            return is_number(value) and value > n

        return gt
    if op == "$gte":

        def gte(value: Any) -> bool:
            cls = value.__class__
            if cls is int or cls is float:
                return value >= n
            return is_number(value) and value >= n

        return gte
    if op == "$lt":

        def lt(value: Any) -> bool:
            cls = value.__class__
            if cls is int or cls is float:
                return value < n
            return is_number(value) and value < n

        return lt

    def lte(value: Any) -> bool:
        cls = value.__class__
        if cls is int or cls is float:
            return value <= n
        return is_number(value) and value <= n

    return lte


class _Membership:
    """Membership in a list of JSON values, without ``True``/``1`` aliasing.

    Strings, numbers and null go in one frozenset, booleans in another (``True in {1}`` is true in
    Python), and arrays/objects - rare - are compared deeply one by one.
    """

    __slots__ = ("bools", "fold", "others", "scalars")

    def __init__(self, values: list[Any], fold: bool = False) -> None:
        scalars: set[Any] = set()
        bools: set[bool] = set()
        others: list[Any] = []
        for item in values:
            kind = json_type(item)
            if kind == "boolean":
                bools.add(bool(item))
            elif kind == "string":
                scalars.add(str(item).lower() if fold else str(item))
            elif kind in ("number", "null"):
                scalars.add(item)
            else:
                others.append(item)
        self.scalars = frozenset(scalars)
        self.bools = frozenset(bools)
        self.others = tuple(others)
        self.fold = fold

    def contains(self, value: Any) -> bool:
        cls = value.__class__
        if cls is str:
            return (value.lower() if self.fold else value) in self.scalars
        if cls is int or cls is float or value is None:
            return value in self.scalars
        if cls is bool:
            return value in self.bools
        kind = json_type(value)
        if kind == "string":
            return (str(value).lower() if self.fold else str(value)) in self.scalars
        if kind == "number":
            return value in self.scalars
        return any(strict_equal(value, other) for other in self.others)

    def any_item(self) -> Callable[[Any], bool]:
        """``items -> bool``: whether any item of a sequence is a member."""
        contains = self.contains
        if self.fold:
            return lambda items: any(map(contains, items))
        scalars = self.scalars
        # frozenset.isdisjoint runs in C; its answer is exact except that True/False hash and
        # compare like 1/0 (a hit needs re-checking if the list holds a 0 or a 1), and booleans and
        # arrays/objects are not in `scalars` (a miss needs re-checking if the list holds some).
        alias_prone = any(
            x.__class__ is not str and x is not None and (x == 0 or x == 1) for x in scalars
        )
        exact_miss = not self.bools and not self.others

        def any_member(items: Any) -> bool:
            try:
                hit = not scalars.isdisjoint(items)
            except TypeError:  # an unhashable item: an array or an object
                return any(map(contains, items))
            if hit:
                return not alias_prone or any(map(contains, items))
            return not exact_miss and any(map(contains, items))

        return any_member

    def predicate(self) -> _Predicate:
        """``$in`` semantics: an array attribute matches when any of its items is a member."""
        scalars = self.scalars
        contains = self.contains
        any_item = self.any_item()
        if self.fold:

            def member_folded(value: Any) -> bool:
                if value.__class__ is str:
                    return value.lower() in scalars
                if isinstance(value, ARRAY_TYPES):
                    return any_item(value)
                return contains(value)

            return member_folded

        def member(value: Any) -> bool:
            if value.__class__ is str:
                return value in scalars
            if isinstance(value, ARRAY_TYPES):
                return any_item(value)
            return contains(value)

        return member


def _membership(op: str, operand: Any) -> _Predicate:
    if not isinstance(operand, list):
        return _false_pred  # the suite: "$in - not array" and "$nin - not array" are false
    pred = _Membership(operand, fold=op in ("$ini", "$nini")).predicate()
    return pred if op in ("$in", "$ini") else _negate(pred)


def _contains_all(op: str, operand: Any, compiler: _Compiler) -> _Predicate:
    if not isinstance(operand, list):
        return _false_pred
    if op == "$all" and all(item.__class__ is str for item in operand):
        needed = frozenset(operand)

        def contains_all_strings(value: Any) -> bool:
            if not isinstance(value, ARRAY_TYPES):
                return False
            try:
                # Only an equal string can stand for a string, so hashing is exact here.
                return needed.issubset(value)
            except TypeError:  # an unhashable item
                return all(any(x == s for x in value) for s in needed)

        return contains_all_strings
    # Each expected item is itself a value condition ({"$gt": 3} works), as in GrowthBook.
    preds = tuple(_compile_value(item, compiler, ignore_case=op == "$alli") for item in operand)

    def contains_all(value: Any) -> bool:
        if not isinstance(value, ARRAY_TYPES):
            return False
        return all(any(map(pred, value)) for pred in preds)

    return contains_all


def _elem_match(operand: Any, compiler: _Compiler) -> _Predicate:
    if not isinstance(operand, Mapping):
        raise _BrokenConditionError("$elemMatch needs an object")
    if elem_match_on_items(operand):
        if len(operand) == 1 and isinstance(operand.get("$in"), list):
            # {"$elemMatch": {"$in": [...]}} is "some item is in the list": set intersection.
            any_member = _Membership(operand["$in"]).any_item()

            def some_item_in(value: Any) -> bool:
                return isinstance(value, ARRAY_TYPES) and any_member(value)

            return some_item_in
        item_pred = _compile_value(operand, compiler)

        def some_item(value: Any) -> bool:
            return isinstance(value, ARRAY_TYPES) and any(map(item_pred, value))

        return some_item
    item_condition = _compile_condition(operand, compiler)

    def some_item_matches(value: Any) -> bool:
        if not isinstance(value, ARRAY_TYPES):
            return False
        # An item that is not an object has no fields: every path in it reads as missing.
        return any(item_condition(i if isinstance(i, Mapping) else _EMPTY) for i in value)

    return some_item_matches


def _version(op: str, operand: Any) -> _Predicate:
    if not isinstance(operand, str):
        # Strict typing, as for ordering: only a string is a version. $vne is $veq negated.
        return _true_pred if op == "$vne" else _false_pred
    expected = padded_version(operand)
    padded = padded_version
    # One closure per operator (no operator.* call): app-version targeting is common.
    if op == "$vne":

        def vne(value: Any) -> bool:
            return not isinstance(value, str) or padded(value) != expected

        return vne
    if op == "$veq":

        def veq(value: Any) -> bool:
            return isinstance(value, str) and padded(value) == expected

        return veq
    if op == "$vgt":

        def vgt(value: Any) -> bool:
            return isinstance(value, str) and padded(value) > expected

        return vgt
    if op == "$vgte":

        def vgte(value: Any) -> bool:
            return isinstance(value, str) and padded(value) >= expected

        return vgte
    if op == "$vlt":

        def vlt(value: Any) -> bool:
            return isinstance(value, str) and padded(value) < expected

        return vlt

    def vlte(value: Any) -> bool:
        return isinstance(value, str) and padded(value) <= expected

    return vlte


def _group_members(entry: Any) -> _Predicate | None:
    """``$in`` over a saved group's members; an absent group is empty, an unknown kind is None."""
    if entry is None:
        return _false_pred
    if isinstance(entry, list):
        return _Membership(entry).predicate()
    if isinstance(entry, Mapping) and entry.get("type") == "list":
        values = entry.get("values")
        if isinstance(values, list):
            return _Membership(values).predicate()
    return None


def _saved_group(op: str, group_id: Any, compiler: _Compiler) -> _Predicate:
    compiler.uses_groups = True
    if not isinstance(group_id, str):
        return _false_pred
    groups = compiler.saved_groups
    static = _group_members(groups.get(group_id) if groups is not None else None)
    negate = op == "$notInGroup"
    # (entry, members) for the last call-time entry seen; one tuple so threads swap it whole.
    memo: list[tuple[Any, _Predicate | None]] = [(object(), None)]

    def in_group(value: Any) -> bool:
        call_groups = _CALL_GROUPS.get()
        if call_groups is None:
            members = static
        else:
            entry = call_groups.get(group_id)
            seen, members = memo[0]
            if seen is not entry:
                members = _group_members(entry)
                memo[0] = (entry, members)
        if members is None:
            return False  # a group kind this engine does not know: neither in nor out
        return members(value) is not negate

    return in_group


def _compile_operator(op: Any, operand: Any, compiler: _Compiler) -> _Predicate:
    if op == "$eq":
        return _equals(operand)
    if op == "$ne":
        return _negate(_equals(operand))
    if op in ORDERING:
        if isinstance(operand, Mapping):
            return _relative_ordering(op, operand, compiler)
        return _ordering(op, operand)
    if op in MEMBERSHIP:
        return _membership(op, operand)
    if op in VERSION:
        return _version(op, operand)
    if op == "$exists":
        return (lambda v: v is not None) if js_truthy(operand) else (lambda v: v is None)
    if op == "$type":

        def has_type(value: Any) -> bool:
            return json_type(value) == operand

        return has_type
    if op in REGEX:
        if not isinstance(operand, str):
            raise _BrokenConditionError(f"{op} needs a pattern string")
        try:
            match = compile_matcher(operand, op == "$regexi")
        except PatternError as exc:
            raise _BrokenConditionError(str(exc)) from None

        def matches(value: Any) -> bool:
            return isinstance(value, str) and match(value)

        return matches
    if op == "$not":
        return _negate(_compile_value(operand, compiler))
    if op == "$size":
        length_pred = _compile_value(operand, compiler)

        def has_size(value: Any) -> bool:
            return isinstance(value, ARRAY_TYPES) and length_pred(len(value))

        return has_size
    if op == "$elemMatch":
        return _elem_match(operand, compiler)
    if op in ALL:
        return _contains_all(op, operand, compiler)
    if op in GROUPS:
        return _saved_group(op, operand, compiler)
    raise _BrokenConditionError(f"unknown operator {op!r}")
