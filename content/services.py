"""Writes for content: saving variants with a revision, reverting, validating block values."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.dateparse import parse_datetime
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .models import REVISIONED_FIELDS, BlockType, Variant, VariantRevision


def block_schema_problems(*, schema: dict[str, Any]) -> list[str]:
    """Problems with a block type's JSON schema itself (refused at save)."""
    try:
        Draft202012Validator.check_schema(schema or {})
    except SchemaError as exc:
        return [exc.message]
    if schema and schema.get("type", "object") != "object":
        return ['The schema of a block must be {"type": "object", ...}.']
    return []


def block_values_problems(*, block_type: BlockType, values: dict[str, Any]) -> dict[str, str]:
    """Each value that does not fit the block's schema, by field name ("" for the whole)."""
    validator = Draft202012Validator(block_type.schema or {"type": "object"})
    problems: dict[str, str] = {}
    for error in validator.iter_errors(values):
        name = str(error.path[0]) if error.path else ""
        if not name and error.validator == "required":
            # "'title' is a required property" belongs to the missing field itself.
            missing = [n for n in error.validator_value if n not in values]
            for field in missing:
                problems.setdefault(field, "This field is required.")
            continue
        problems.setdefault(name, error.message)
    return problems


@transaction.atomic
def variant_save(*, variant: Variant, author: str, comment: str = "") -> Variant:
    """Save a variant and record its new state as a revision."""
    variant.save()
    VariantRevision.objects.create(
        variant=variant, state=variant.revision_state(), author=author, comment=comment
    )
    return variant


@transaction.atomic
def variant_revert(*, revision: VariantRevision, author: str) -> Variant:
    """Bring a variant back to a revision's state (itself recorded as a new revision)."""
    variant = Variant.objects.select_for_update().get(pk=revision.variant_id)
    state = revision.state
    for name in REVISIONED_FIELDS:
        if name in state:
            setattr(variant, name, state[name])
    variant.block_type_id = state.get("block_type")
    for name in ("starts_at", "ends_at"):
        setattr(variant, name, parse_datetime(state[name]) if state.get(name) else None)
    variant.full_clean()
    return variant_save(
        variant=variant,
        author=author,
        comment=f"Reverted to the revision of {revision.created_at:%Y-%m-%d %H:%M:%S}",
    )
