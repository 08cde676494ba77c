"""Django glue for the pure condition language: a field validator that names every problem.

Apps may import this module and `rules`; they never import the delivery modules
(context, snapshot, decide, api), so dependencies keep pointing one way.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError


def validate_condition_value(value: Any) -> None:
    from rules import validate_condition

    if value in (None, {}):
        return
    problems = validate_condition(value)
    if problems:
        raise ValidationError(
            [f"{p.path}: {p.message}" for p in problems], code="invalid_condition"
        )
