"""Writes for content: saving variants and placements with a revision, reverting, validating
block values."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from core.validators import validate_json_depth

from .models import (
    REVISIONED_FIELDS,
    BlockType,
    Placement,
    PlacementRevision,
    Variant,
    VariantRevision,
    VariantStatus,
    placement_restorable,
)


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


def variant_check_content(*, variant: Variant) -> None:
    """ValidationError when the variant's template or JSON would be refused by its model's
    clean() (the checks that do not need the database)."""
    from core.validators import validate_condition_value

    from .models import template_refused

    template_refused(variant.template, "template")
    for name in ("condition", "data", "block_fields"):
        try:
            if name == "condition":
                validate_condition_value(variant.condition)
            else:
                validate_json_depth(getattr(variant, name))
        except ValidationError as exc:
            raise ValidationError({name: exc.messages}) from None


@transaction.atomic
def variant_save(*, variant: Variant, author: str, comment: str = "") -> Variant:
    """Save a variant and record its new state as a revision. A template with a problem that
    can be known without rendering it (content.rendering.template_check) is refused with a
    ValidationError on `template`, like data nested too deep."""
    variant_check_content(variant=variant)
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


@transaction.atomic
def placement_save(*, placement: Placement, author: str, comment: str = "") -> Placement:
    """Save a placement and record its new state as a revision when a revisioned field changed.

    The key is immutable once created: pages use it, and a revision does not restore it. A first
    change to a placement whose stored state has no revision yet (created by a script, or changed
    outside the admin) records that state first, so this change too can be reverted.
    """
    if placement.pk is None:
        placement.save()
        PlacementRevision.objects.create(
            placement=placement, state=placement.revision_state(), author=author, comment=comment
        )
        return placement
    stored = (
        Placement.objects.select_for_update(of=("self",))
        .select_related("default_variant")
        .get(pk=placement.pk)
    )
    if placement.key != stored.key:
        raise ValidationError({"key": "The key of a placement cannot change: pages use it."})
    before, after = stored.revision_state(), placement.revision_state()
    placement.save()
    if placement_restorable(after) == placement_restorable(before):
        return placement
    latest = PlacementRevision.objects.filter(placement=placement).first()
    if latest is None or placement_restorable(latest.state) != placement_restorable(before):
        PlacementRevision.objects.create(
            placement=placement,
            state=before,
            comment="Stored state, not yet in the history",
        )
    PlacementRevision.objects.create(
        placement=placement, state=after, author=author, comment=comment
    )
    return placement


def _revert_default(*, placement: Placement, revision: PlacementRevision) -> Variant | None:
    """The revision's default variant if the placement can take it back, else a ValidationError
    that says why (an editor reads it as it is)."""
    state = revision.state
    default_id = state.get("default_variant")
    default = (
        Variant.objects.select_for_update().filter(pk=default_id).first() if default_id else None
    )
    label = f'"{state.get("default_variant_key") or default_id}"'
    if default_id is None and not placement.variants.exists():
        return None
    if default_id is None:
        reason = "it had no default variant, and a placement with variants needs one."
    elif default is None:
        reason = f"its default variant {label} no longer exists."
    elif default.placement_id != placement.pk:
        reason = f"its default variant {label} now belongs to another placement."
    elif default.status != VariantStatus.LIVE:
        reason = (
            f"its default variant {label} is not live ({default.get_status_display().lower()}); "
            "make it live first, or revert to another revision."
        )
    else:
        return default
    raise ValidationError(
        f'Placement "{placement.key}" cannot go back to the revision of '
        f"{revision.created_at:%Y-%m-%d %H:%M:%S}: {reason}",
        code="default_variant_unavailable",
    )


@transaction.atomic
def placement_revert(*, revision: PlacementRevision, author: str) -> Placement:
    """Bring a placement back to a revision's state (itself recorded as a new revision).

    Refused with a ValidationError when the revision's default variant no longer exists, belongs
    to another placement or is not live, or when it had none and the placement now has variants.
    """
    placement = Placement.objects.select_for_update().get(pk=revision.placement_id)
    default = _revert_default(placement=placement, revision=revision)
    state = revision.state
    placement.name = state.get("name", placement.name)
    placement.description = state.get("description", placement.description)
    placement.default_variant = default
    placement.full_clean()
    return placement_save(
        placement=placement,
        author=author,
        comment=f"Reverted to the revision of {revision.created_at:%Y-%m-%d %H:%M:%S}",
    )
