"""The operator vocabulary of the condition language, in one place for compiler and validator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Keys of a condition object that combine conditions rather than name an attribute.
LOGICAL = frozenset({"$and", "$or", "$nor", "$not"})
#: Logical keys whose operand is a list of conditions.
LOGICAL_LISTS = frozenset({"$and", "$or", "$nor"})
#: Logical keys that, inside ``$elemMatch``, make its operand a condition on each item's fields.
ELEM_CONDITION_KEYS = frozenset({"$and", "$or", "$nor"})

ORDERING = frozenset({"$gt", "$gte", "$lt", "$lte"})
VERSION = frozenset({"$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"})
MEMBERSHIP = frozenset({"$in", "$nin", "$ini", "$nini"})
ALL = frozenset({"$all", "$alli"})
REGEX = frozenset({"$regex", "$regexi"})
GROUPS = frozenset({"$inGroup", "$notInGroup"})

#: Every operator allowed on an attribute value.
VALUE_OPERATORS = (
    frozenset({"$eq", "$ne", "$elemMatch", "$size", "$exists", "$type", "$not"})
    | ORDERING
    | VERSION
    | MEMBERSHIP
    | ALL
    | REGEX
    | GROUPS
)


def is_operator_object(value: Any) -> bool:
    """An object whose keys all start with ``$`` applies operators to a value; any other value is
    compared for equality. ``{}`` counts as an operator object with no operators (always true)."""
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and k.startswith("$") for k in value
    )


def elem_match_on_items(operand: Mapping[str, Any]) -> bool:
    """Whether an ``$elemMatch`` operand applies operators to each item itself (``{"$gt": 1}``),
    as opposed to being a condition on each item's fields (``{"name": ...}``, ``{"$or": [...]}``).
    """
    return is_operator_object(operand) and not any(k in ELEM_CONDITION_KEYS for k in operand)
