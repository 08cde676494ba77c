"""Django glue for the pure condition language: a field validator that names every problem.

Apps may import this module and `rules`; they never import the delivery modules
(context, snapshot, decide, api), so dependencies keep pointing one way.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError


def validate_condition_value(value: Any) -> None:
    from rules import validate_condition

    if value in (None, {}):
        return
    validate_json_depth(value)
    problems = validate_condition(value)
    if problems:
        raise ValidationError(
            [f"{p.path}: {p.message}" for p in problems], code="invalid_condition"
        )


# Nesting depth of JSON a field accepts (conditions, variant data, schemas, ...): Python's JSON
# parser and every recursive walk after it (condition validation, compiling, copying) hit the
# interpreter's recursion limit on input nested ~1,000 levels deep, a 500; nothing legitimate
# nests more than a few levels.
MAX_JSON_DEPTH = 32


def json_text_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in a JSON text, without parsing it (iterative)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """The nesting depth of a parsed JSON value (iterative; stops counting past `limit`)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def validate_json_depth(value: Any) -> None:
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValidationError(f"Nested more than {MAX_JSON_DEPTH} levels deep.", code="too_deep")


# Visitor ids are opaque, but a control character (C0, DEL, C1) in one cannot travel in a URL
# path (export, erase), a log line or a header unharmed: refused at every entry point.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_characters(value: str) -> bool:
    return CONTROL_CHARACTERS.search(value) is not None


def validate_visitor_id(value: Any) -> None:
    if isinstance(value, str) and has_control_characters(value):
        raise ValidationError("Must not contain control characters.", code="control_characters")
