"""Reading a condition: an English sentence for the admin, and the attribute paths it depends on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from .operators import LOGICAL_LISTS, is_operator_object
from .timing import RELATIVE, describe_duration
from .values import is_number, parse_instant


class _Clause(NamedTuple):
    text: str
    #: An "either ... or ..." / "neither ... nor ..." clause needs brackets next to an "and".
    disjunctive: bool = False


def describe_condition(condition: Any) -> str:
    """A readable sentence, e.g. ``{"country": {"$in": ["FR", "DE"]}, "device": "mobile"}`` reads
    "country is one of FR, DE and device is mobile"; ``{}`` reads "everyone"."""
    return _join(_clauses(condition))


def condition_fields(condition: Any) -> set[str]:
    """Every attribute path the condition reads, as written (dotted), through ``$and``, ``$or``,
    ``$nor`` and ``$not``. Paths inside an ``$elemMatch`` are relative to the array's items, so
    only the array's own path counts."""
    fields: set[str] = set()
    _collect_fields(condition, fields)
    return fields


def _collect_fields(condition: Any, fields: set[str]) -> None:
    if not isinstance(condition, Mapping):
        return
    for key, value in condition.items():
        if key in LOGICAL_LISTS:
            if isinstance(value, list):
                for sub in value:
                    _collect_fields(sub, fields)
        elif key == "$not":
            _collect_fields(value, fields)
        elif isinstance(key, str):
            fields.add(key)


# --- Sentences ------------------------------------------------------------------------------------


def _join(clauses: list[_Clause]) -> str:
    if not clauses:
        return "everyone"
    if len(clauses) == 1:
        return clauses[0].text
    return " and ".join(f"({c.text})" if c.disjunctive else c.text for c in clauses)


def _as_part(condition: Any) -> str:
    """One branch of an either/neither: bracketed when it is itself more than one clause."""
    clauses = _clauses(condition)
    if len(clauses) == 1 and not clauses[0].disjunctive:
        return clauses[0].text
    text = _join(clauses)
    return text if len(clauses) == 0 else f"({text})"


def _clauses(condition: Any) -> list[_Clause]:
    """Clauses whose conjunction is ``condition``."""
    if not isinstance(condition, Mapping):
        return [_Clause(f"(invalid condition {_fmt(condition)})")]
    out: list[_Clause] = []
    for key, value in condition.items():
        if key in LOGICAL_LISTS and not isinstance(value, list):
            out.append(_Clause(f"(invalid {key} {_fmt(value)})"))
        elif key == "$and":
            for sub in value:
                out.extend(_clauses(sub))
        elif key == "$or":
            if len(value) == 1:
                out.extend(_clauses(value[0]))
            elif value:
                out.append(_Clause("either " + " or ".join(map(_as_part, value)), True))
        elif key == "$nor":
            if not value:
                out.append(_Clause("no one"))
            elif len(value) == 1:
                out.append(_Clause(f"not ({_join(_clauses(value[0]))})"))
            else:
                out.append(_Clause("neither " + " nor ".join(map(_as_part, value)), True))
        elif key == "$not":
            out.append(_Clause(f"not ({_join(_clauses(value))})"))
        else:
            out.extend(_Clause(text) for text in _value_clauses(str(key), value))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value if value and value.strip() == value else json.dumps(value, ensure_ascii=False)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _fmt_list(values: Any) -> str:
    if not isinstance(values, list):
        return _fmt(values)
    return ", ".join(map(_fmt, values)) if values else "(no values)"


_TYPE_NAMES = {
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
    "object": "an object",
    "array": "an array",
}
_ORDER_WORDS = {
    "$gt": ("is greater than", "is after"),
    "$gte": ("is at least", "is on or after"),
    "$lt": ("is less than", "is before"),
    "$lte": ("is at most", "is on or before"),
}
_VERSION_WORDS = {
    "$veq": "is version",
    "$vne": "is not version",
    "$vgt": "is version >",
    "$vgte": "is version ≥",
    "$vlt": "is version <",
    "$vlte": "is version ≤",
}
_MEMBERSHIP_WORDS = {
    "$in": "is one of",
    "$nin": "is not one of",
    "$ini": "is one of",
    "$nini": "is not one of",
}


def _value_clauses(subject: str, value: Any) -> list[str]:
    if not is_operator_object(value):
        return [f"{subject} is not set" if value is None else f"{subject} is {_fmt(value)}"]
    if not value:
        return [f"{subject} is anything"]
    return [_operator_clause(subject, op, operand) for op, operand in value.items()]


def _value_text(subject: str, value: Any) -> str:
    return " and ".join(_value_clauses(subject, value))


def _operator_clause(subject: str, op: str, operand: Any) -> str:
    if op == "$eq":
        return f"{subject} is not set" if operand is None else f"{subject} is {_fmt(operand)}"
    if op == "$ne":
        return f"{subject} is set" if operand is None else f"{subject} is not {_fmt(operand)}"
    if op in _ORDER_WORDS and isinstance(operand, Mapping) and len(operand) == 1:
        ((key, text),) = operand.items()
        if key in RELATIVE and isinstance(text, str):
            when = "ago" if key == "$ago" else "from now"
            return f"{subject} {_ORDER_WORDS[op][1]} {describe_duration(text)} {when}"
    if op in _ORDER_WORDS:
        as_number, as_time = _ORDER_WORDS[op]
        is_time = isinstance(operand, str) and parse_instant(operand) is not None
        return f"{subject} {as_time if is_time else as_number} {_fmt(operand)}"
    if op in _MEMBERSHIP_WORDS:
        suffix = " (ignoring case)" if op in ("$ini", "$nini") else ""
        return f"{subject} {_MEMBERSHIP_WORDS[op]} {_fmt_list(operand)}{suffix}"
    if op in _VERSION_WORDS:
        return f"{subject} {_VERSION_WORDS[op]} {_fmt(operand)}"
    if op in ("$all", "$alli"):
        suffix = " (ignoring case)" if op == "$alli" else ""
        if not isinstance(operand, list):
            return f"{subject} contains all of {_fmt(operand)}{suffix}"
        plain = [item for item in operand if not is_operator_object(item)]
        rules = [item for item in operand if is_operator_object(item)]
        parts = [f"contains all of {_fmt_list(plain)}{suffix}"] if plain or not rules else []
        parts += [f"has an item where {_value_text('the item', item)}" for item in rules]
        return f"{subject} " + " and ".join(parts)
    if op == "$elemMatch":
        if is_operator_object(operand) and not any(k in LOGICAL_LISTS for k in operand):
            return f"{subject} has an item where {_value_text('the item', operand)}"
        return f"{subject} has an item where {describe_condition(operand)}"
    if op == "$size":
        if is_number(operand):
            noun = "item" if operand == 1 else "items"
            return f"{subject} has {_fmt(operand)} {noun}"
        return _value_text(f"the number of items in {subject}", operand)
    if op == "$exists":
        return f"{subject} is set" if operand else f"{subject} is not set"
    if op == "$type":
        name = _TYPE_NAMES.get(operand) if isinstance(operand, str) else None
        return f"{subject} is {name or _fmt(operand)}"
    if op == "$regex":
        return f"{subject} matches /{operand}/"
    if op == "$regexi":
        return f"{subject} matches /{operand}/i"
    if op == "$not":
        return f"not ({_value_text(subject, operand)})"
    if op == "$inGroup":
        return f"{subject} is in group {_fmt(operand)}"
    if op == "$notInGroup":
        return f"{subject} is not in group {_fmt(operand)}"
    return f"{subject} has unknown operator {op} {_fmt(operand)}"
