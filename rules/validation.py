"""Finds every problem in a condition before Mosaic stores it.

Stricter than the evaluator on purpose: the evaluator must answer for anything (GrowthBook's suite
gives meanings to odd inputs), but an admin should never save a condition whose meaning is a
surprise - a number compared with ``$regex``, ``$in`` without a list, a pattern that needs
backtracking, an unknown operator.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .operators import (
    ALL,
    GROUPS,
    LOGICAL_LISTS,
    MEMBERSHIP,
    ORDERING,
    REGEX,
    VALUE_OPERATORS,
    VERSION,
    elem_match_on_items,
    is_operator_object,
)
from .regex import PatternError, check_pattern
from .timing import RELATIVE, DurationError, parse_duration
from .values import JSON_TYPES, is_number


@dataclass(frozen=True, order=True)
class ConditionError:
    """One problem: where (``$.$or[1].country.$in``) and what, in plain English."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")


def child_path(path: str, key: Any) -> str:
    """``$.country`` for plain keys, ``$['father.age']`` for keys a dot would make ambiguous."""
    if isinstance(key, str) and _PLAIN_KEY.match(key):
        return f"{path}.{key}"
    text = str(key).replace("\\", "\\\\").replace("'", "\\'")
    return f"{path}['{text}']"


def validate_condition(condition: Any) -> list[ConditionError]:
    """Every problem in ``condition``, in document order; an empty list means it is valid."""
    errors: list[ConditionError] = []
    try:
        _check_condition(condition, "$", errors)
    except RecursionError:
        errors.append(ConditionError("$", "is nested too deeply"))
    return errors


def _check_condition(condition: Any, path: str, errors: list[ConditionError]) -> None:
    if not isinstance(condition, Mapping):
        errors.append(ConditionError(path, "must be an object of attribute conditions"))
        return
    for key, value in condition.items():
        here = child_path(path, key)
        if not isinstance(key, str):
            errors.append(ConditionError(here, "attribute paths must be strings"))
        elif key in LOGICAL_LISTS:
            if not isinstance(value, list):
                errors.append(ConditionError(here, f"{key} needs a list of conditions"))
            else:
                for index, sub in enumerate(value):
                    _check_condition(sub, f"{here}[{index}]", errors)
        elif key == "$not":
            _check_condition(value, here, errors)
        elif key in VALUE_OPERATORS:
            errors.append(
                ConditionError(
                    here,
                    f"{key} applies to an attribute's value; put it under an attribute, "
                    f'as in {{"age": {{"{key}": ...}}}}',
                )
            )
        else:
            if key == "" or "" in key.split("."):
                errors.append(
                    ConditionError(here, "attribute paths are names separated by single dots")
                )
            _check_value(value, here, errors)


def _check_value(value: Any, path: str, errors: list[ConditionError]) -> None:
    """A value condition: an operator object, or a JSON value the attribute must equal."""
    if isinstance(value, Mapping) and value:
        dollar = [k for k in value if isinstance(k, str) and k.startswith("$")]
        if dollar and len(dollar) != len(value):
            errors.append(
                ConditionError(
                    path,
                    "mixes operators (" + ", ".join(dollar) + ") with plain keys; use only "
                    "operators, or only plain keys to compare with an object",
                )
            )
            return
    if is_operator_object(value):
        for op, operand in value.items():
            _check_operator(op, operand, child_path(path, op), errors)
        return
    _check_json(value, path, errors)


def _check_json(value: Any, path: str, errors: list[ConditionError]) -> None:
    if value is None or isinstance(value, str | bool):
        return
    if is_number(value):
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(ConditionError(path, "must be a finite number"))
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", errors)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                errors.append(ConditionError(child_path(path, key), "object keys must be strings"))
            else:
                _check_json(item, child_path(path, key), errors)
        return
    errors.append(ConditionError(path, f"is not a JSON value ({type(value).__name__})"))


def _check_operator(op: str, operand: Any, path: str, errors: list[ConditionError]) -> None:
    def fail(message: str) -> None:
        errors.append(ConditionError(path, message))

    if op in ("$eq", "$ne"):
        _check_json(operand, path, errors)
    elif op in ORDERING:
        if isinstance(operand, str):
            return
        if isinstance(operand, Mapping):
            _check_relative(op, operand, path, errors)
            return
        if not is_number(operand):
            fail(
                f"{op} needs a number, a string (dates are ISO-8601 strings) or a relative "
                'instant such as {"$ago": "30m"}'
            )
        elif not math.isfinite(operand):
            fail("must be a finite number")
    elif op in MEMBERSHIP:
        if not isinstance(operand, list):
            fail(f"{op} needs a list of values")
        else:
            _check_json(operand, path, errors)
    elif op in ALL:
        if not isinstance(operand, list):
            fail(f"{op} needs a list of values")
        else:
            for index, item in enumerate(operand):
                _check_value(item, f"{path}[{index}]", errors)
    elif op == "$elemMatch":
        if not isinstance(operand, Mapping):
            fail(
                "$elemMatch needs an object: operators for each item, as in "
                '{"$gt": 5}, or a condition on each item\'s fields'
            )
        elif elem_match_on_items(operand):
            _check_value(operand, path, errors)
        else:
            _check_condition(operand, path, errors)
    elif op == "$size":
        if is_number(operand):
            if not (math.isfinite(operand) and operand >= 0 and operand == int(operand)):
                fail("$size needs a whole number of items (0 or more)")
        elif isinstance(operand, Mapping) and is_operator_object(operand):
            _check_value(operand, path, errors)
        else:
            fail('$size needs a number or an operator object such as {"$gt": 2}')
    elif op == "$exists":
        if not isinstance(operand, bool):
            fail("$exists needs true or false")
    elif op == "$type":
        if not isinstance(operand, str) or operand not in JSON_TYPES:
            fail("$type needs one of " + ", ".join(sorted(JSON_TYPES)))
    elif op in REGEX:
        try:
            check_pattern(operand, ignore_case=op == "$regexi")
        except PatternError as exc:
            fail(f"the pattern {exc}")
    elif op == "$not":
        _check_value(operand, path, errors)
    elif op in VERSION:
        if not isinstance(operand, str) or not operand:
            fail(f'{op} needs a version string such as "1.2.0"')
    elif op in GROUPS:
        if not isinstance(operand, str) or not operand:
            fail(f"{op} needs a saved group id (a string)")
    elif op in LOGICAL_LISTS:
        fail(f"{op} combines conditions, not values; move it up to where attributes are named")
    else:
        fail(f"unknown operator {json.dumps(op)}")


def _check_relative(
    op: str, operand: Mapping[str, Any], path: str, errors: list[ConditionError]
) -> None:
    """``{"$ago": "30m"}`` or ``{"$ahead": "3d"}``: exactly one key, a well-formed duration."""
    keys = list(operand)
    if len(keys) != 1 or keys[0] not in RELATIVE:
        errors.append(
            ConditionError(
                path,
                f'{op} compares with a relative instant only as {{"$ago": "30m"}} or '
                '{"$ahead": "3d"} (one key); got ' + json.dumps([str(k) for k in keys]),
            )
        )
        return
    try:
        parse_duration(operand[keys[0]])
    except DurationError as exc:
        errors.append(ConditionError(child_path(path, keys[0]), f"{keys[0]} {exc}"))
