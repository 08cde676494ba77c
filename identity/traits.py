"""Trait coercion: incoming values converted once to their declared type, errors per trait."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime

from .models import TraitType
from .selectors import trait_definitions

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


def traits_coerce(
    traits: dict[str, Any],
    *,
    definitions: dict[str, str] | None = None,
    undeclared: str | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(coerced traits, {trait name: error message}); `null` always passes (it clears a trait).

    Undeclared traits are kept as sent under MOSAIC_UNDECLARED_TRAITS="accept" (the default) and
    refused under "reject". `definitions` (name → type) is read from the database when omitted.
    """
    if definitions is None:
        definitions = trait_definitions()
    policy = undeclared or settings.MOSAIC_UNDECLARED_TRAITS
    coerced: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, value in traits.items():
        kind = definitions.get(name)
        if kind is None:
            if policy == "reject":
                errors[name] = "Undeclared trait (MOSAIC_UNDECLARED_TRAITS=reject)."
            else:
                coerced[name] = value
            continue
        if value is None:
            coerced[name] = None
            continue
        try:
            coerced[name] = _COERCERS[kind](value)
        except _Invalid as exc:
            errors[name] = str(exc)
    return coerced, errors
