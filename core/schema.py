"""Declared request schemas (pydantic) for the endpoints where DRF's serializers cost too much.

A schema declared here is the only validation of its endpoint: every call goes through it, its
errors are answered by core.errors' one handler in the one error shape (each naming its field:
`placements[0]`, `context.device`, `body`), and drf-spectacular documents it from the same
class (its pydantic extension turns the model's JSON schema into the OpenAPI component).

Why pydantic there: a DRF serializer built and run per request cost a hundred times more for a
decide body than the same rules in pydantic-core (docs/benchmarks.md, "One schema", has the
figures).

What a DRF CharField did and the helpers keep: surrounding whitespace is trimmed; numbers are
taken as their text (`"visitor": 42` is `"42"`); U+0000 is refused (PostgreSQL cannot store it);
a lone surrogate is refused (pydantic: not a valid string); blank is allowed only where said.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

# At most this many unknown keys are named in an answer (a body may hold 150,000 of them).
MAX_NAMED_UNKNOWN = 10


def _no_null_character(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("null_character", "Null characters are not allowed.")
    return value


def Trim(**constraints: Any) -> StringConstraints:
    """A string's constraints, applied once surrounding whitespace is trimmed."""
    return StringConstraints(strip_whitespace=True, **constraints)


# After the length and pattern: Annotated[str, Trim(max_length=200), NoNull].
NoNull = AfterValidator(_no_null_character)


def at_most(count: int, what: str = "items") -> BeforeValidator:
    """Refuses a list or dict longer than `count` before any of its members is validated (a body
    may hold 230,000 of them)."""

    def check(value: Any) -> Any:
        if isinstance(value, list | dict) and len(value) > count:
            raise PydanticCustomError(
                "too_long", "At most {count} {what}.", {"count": count, "what": what}
            )
        return value

    return BeforeValidator(check)


class StrictSchema(BaseModel):
    """Refuses keys it does not declare, naming them, instead of dropping them; a body with far
    more keys than the schema has fields is refused before any work."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _bounded_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = len(cls.model_fields)
            if len(data) > 4 * known + MAX_NAMED_UNKNOWN:
                raise PydanticCustomError(
                    "too_many_fields",
                    "Too many fields ({count}); at most {known} are known.",
                    {"count": len(data), "known": known},
                )
        return data
