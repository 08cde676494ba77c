"""Trait coercion: incoming values converted once to their declared type, then checked against
the definition's validation rules (range, allowed values, pattern); errors per trait.

A value breaking a rule is refused with the trait named and counted
(``mosaic_traits_refused_total{trait, rule}`` at /metrics); the caller stores nothing of the call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime

from core import metrics
from rules.regex import PatternError, compile_matcher

from .models import TraitType
from .selectors import trait_definition_rows

_INT = re.compile(r"^[+-]?\d+$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_SCALARS = (str, int, float, bool)


class _Invalid(ValueError):
    pass


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise _Invalid("Expected a number, got a boolean.")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str) and _INT.match(value.strip()):
        number = int(value.strip())
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _Invalid(f"Expected a number, got {value!r}.") from None
    else:
        raise _Invalid("Expected a number.")
    if isinstance(number, float) and not math.isfinite(number):
        raise _Invalid("Expected a finite number.")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Invalid(f"Expected a boolean (true/false), got {value!r}.")


def _date(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            # Date first: parse_datetime would also read "1990-04-01" as midnight.
            parsed: date | datetime | None = parse_date(text) or parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed.isoformat()
    raise _Invalid(f"Expected an ISO 8601 date or date-time, got {value!r}.")


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _Invalid("Expected a string.")


def _list(value: Any) -> list[Any]:
    if isinstance(value, list) and all(isinstance(item, _SCALARS) for item in value):
        return value
    raise _Invalid("Expected a list of strings, numbers or booleans.")


_COERCERS = {
    TraitType.STRING: _string,
    TraitType.NUMBER: _number,
    TraitType.BOOLEAN: _boolean,
    TraitType.DATE: _date,
    TraitType.LIST: _list,
}


MAX_ALLOWED_VALUES = 1000


@dataclass(frozen=True, slots=True)
class TraitSpec:
    """A declared trait's type and validation rules, the pattern compiled once (RE2)."""

    type: str
    min_value: float | None = None
    max_value: float | None = None
    allowed_values: tuple[Any, ...] = ()
    pattern: str = ""
    matcher: Callable[[str], bool] | None = None

    @classmethod
    def build(
        cls,
        kind: str,
        min_value: float | None = None,
        max_value: float | None = None,
        allowed_values: Any = (),
        pattern: str = "",
    ) -> TraitSpec:
        matcher = None
        if pattern:
            try:
                matcher = compile_matcher(f"^(?:{pattern})$")
            except PatternError:
                # Refused at save (TraitDefinition.clean); a row written around it refuses
                # every value rather than accepting unchecked ones.
                matcher = _no_match
        allowed = tuple(allowed_values) if isinstance(allowed_values, list | tuple) else ()
        return cls(kind, min_value, max_value, allowed, pattern, matcher)


def _no_match(text: str) -> bool:
    return False


def trait_specs() -> dict[str, TraitSpec]:
    """name → TraitSpec of every declared trait (one query)."""
    return {row[0]: TraitSpec.build(*row[1:]) for row in trait_definition_rows()}


def trait_rules_errors(
    *,
    kind: str,
    min_value: float | None,
    max_value: float | None,
    allowed_values: Any,
    pattern: str,
) -> dict[str, str]:
    """Problems in a definition's rules, by field (for the admin and any API writing them)."""
    errors: dict[str, str] = {}
    if kind != TraitType.NUMBER and (min_value is not None or max_value is not None):
        errors["min_value" if min_value is not None else "max_value"] = (
            "A range applies to number traits only."
        )
    for name, bound in (("min_value", min_value), ("max_value", max_value)):
        if bound is not None and not math.isfinite(bound):
            errors[name] = "Must be a finite number."
    if min_value is not None and max_value is not None and min_value > max_value:
        errors["max_value"] = "Must be at least min_value."
    if allowed_values:
        if kind not in (TraitType.STRING, TraitType.NUMBER, TraitType.LIST):
            errors["allowed_values"] = "Allowed values apply to string, number and list traits."
        elif not isinstance(allowed_values, list) or len(allowed_values) > MAX_ALLOWED_VALUES:
            errors["allowed_values"] = f"Must be a list of at most {MAX_ALLOWED_VALUES} values."
        elif not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in allowed_values
        ):
            errors["allowed_values"] = "Each allowed value must be a string or a number."
    if pattern:
        if kind not in (TraitType.STRING, TraitType.LIST):
            errors["pattern"] = "A pattern applies to string and list traits."
        else:
            try:
                compile_matcher(f"^(?:{pattern})$")
            except PatternError as exc:
                errors["pattern"] = f"The pattern {exc}."
    return errors


def _rule_broken(spec: TraitSpec, value: Any) -> tuple[str, str] | None:
    """(rule, message) of the first rule `value` (already coerced) breaks, or None."""
    items = value if spec.type == TraitType.LIST else [value]
    if spec.type == TraitType.NUMBER:
        if spec.min_value is not None and value < spec.min_value:
            return "range", f"Must be at least {spec.min_value:g}."
        if spec.max_value is not None and value > spec.max_value:
            return "range", f"Must be at most {spec.max_value:g}."
    if spec.allowed_values:
        allowed = spec.allowed_values
        for item in items:
            if isinstance(item, bool) or item not in allowed:
                shown = ", ".join(map(str, allowed[:10])) + (", ..." if len(allowed) > 10 else "")
                return "allowed_values", f"{item!r} is not one of the allowed values ({shown})."
    if spec.matcher is not None:
        for item in items:
            if not isinstance(item, str) or not spec.matcher(item):
                return "pattern", f"{item!r} does not match the pattern {spec.pattern}."
    return None


def traits_coerce(
    traits: dict[str, Any],
    *,
    definitions: dict[str, str | TraitSpec] | None = None,
    undeclared: str | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(coerced traits, {trait name: error message}); `null` always passes (it clears a trait).

    Undeclared traits are kept as sent under MOSAIC_UNDECLARED_TRAITS="accept" (the default) and
    refused under "reject". `definitions` (name → type or TraitSpec) is read from the database
    when omitted. A value breaking its definition's rules is an error (and counted).
    """
    if definitions is None:
        definitions = trait_specs()
    policy = undeclared or settings.MOSAIC_UNDECLARED_TRAITS
    coerced: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, value in traits.items():
        spec = definitions.get(name)
        if isinstance(spec, str):
            spec = TraitSpec(spec)
        if spec is None:
            if policy == "reject":
                errors[name] = "Undeclared trait (MOSAIC_UNDECLARED_TRAITS=reject)."
            else:
                coerced[name] = value
            continue
        if value is None:
            coerced[name] = None
            continue
        try:
            coerced_value = _COERCERS[spec.type](value)
        except _Invalid as exc:
            errors[name] = str(exc)
            continue
        broken = _rule_broken(spec, coerced_value)
        if broken is not None:
            rule, message = broken
            errors[name] = message
            metrics.incr("mosaic_traits_refused_total", trait=name, rule=rule)
            continue
        coerced[name] = coerced_value
    return coerced, errors
