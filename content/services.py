"""Writes for content: saving variants and placements with a revision, reverting, validating
block values."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils.dateparse import parse_datetime
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from core.revisions import revision_record
from segments.catalogue import condition_findings
from segments.models import AuditAction
from segments.privacy import audit_record

from .models import (
    PLACEMENT_REVISIONED_FIELDS,
    REVISIONED_FIELDS,
    VARIANT_RESTORED_KEYS,
    BlockType,
    Placement,
    PlacementRevision,
    Variant,
    VariantRevision,
    VariantStatus,
    placement_restorable,
)
from .rendering import template_check

# Bounds on what an editor or a script may store (hostile input gets a 400 naming the field).
TEMPLATE_MAX_LENGTH = 100_000


# Schema keywords whose regular expressions jsonschema runs with Python's backtracking `re`: a
# pattern such as "(a+)+$" would let one block value stall a save for minutes. Refused.
_REGEX_KEYWORDS = ("pattern", "patternProperties")


def _regex_keywords(node: Any, depth: int = 0) -> set[str]:
    if depth > 50:
        return {"(nested too deeply)"}
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _REGEX_KEYWORDS or (key == "format" and value == "regex"):
                found.add(key)
            found |= _regex_keywords(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            found |= _regex_keywords(item, depth + 1)
    return found


def block_schema_problems(*, schema: dict[str, Any]) -> list[str]:
    """Problems with a block type's JSON schema itself (refused at save)."""
    try:
        Draft202012Validator.check_schema(schema or {})
    except SchemaError as exc:
        return [exc.message]
    except RecursionError:
        return ["The schema is nested too deeply."]
    regexes = _regex_keywords(schema)
    if regexes:
        return [
            f"Regular expressions ({', '.join(sorted(regexes))}) are not allowed in block "
            "schemas: they would run unbounded on every value; use enum, maxLength or format."
        ]
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


def content_audit(*, model: str, obj: str, change: str, actor: str, fields=()) -> None:
    """Append a content change to the audit log: which object, what kind of change, which fields.

    Content keys and field names only: no values (a template or payload may quote anything)."""
    details: dict[str, Any] = {"model": model, "object": obj[:200], "change": change}
    if fields:
        details["fields"] = sorted(fields)
    audit_record(
        action=AuditAction.CONTENT_CHANGE, actor=(actor or "system")[:150], details=details
    )


def _merge(errors: dict[str, list[str]], field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _template_problems(errors: dict[str, list[str]], field: str, source: str) -> None:
    if len(source or "") > TEMPLATE_MAX_LENGTH:
        _merge(errors, field, f"At most {TEMPLATE_MAX_LENGTH} characters.")
        return
    problem = template_check(source or "")
    if problem:
        _merge(errors, field, f"Template error at {problem}")


def _model_problems(obj, exclude=None) -> dict[str, list[str]]:
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        return {
            ("body" if name == "__all__" else name): list(messages)
            for name, messages in exc.message_dict.items()
        }
    return {}


def variant_problems(*, variant: Variant, exclude=None) -> dict[str, list[str]]:
    """Everything the admin and the API refuse in a variant, by field ("block_fields.<name>" for a
    block value): the model's own checks (condition language, key, uniqueness, default status),
    the template, the schedule, the block's values against its schema, and some content."""
    errors = _model_problems(variant)
    if variant.pk is not None and "placement" not in errors:
        stored = Variant.objects.filter(pk=variant.pk).values_list("placement_id", flat=True)
        if stored.first() not in (None, variant.placement_id):
            _merge(
                errors,
                "placement",
                "A variant cannot move to another placement (its history and experiments "
                "belong to this one): create a new variant there instead.",
            )
    if not isinstance(variant.data, dict):
        _merge(errors, "data", "Must be a JSON object.")
    if variant.block_type_id is None:
        _template_problems(errors, "template", variant.template)
    if variant.starts_at and variant.ends_at and variant.ends_at <= variant.starts_at:
        _merge(errors, "ends_at", "Must be after the start.")
    if variant.block_type_id is not None:
        values = variant.block_fields
        if not isinstance(values, dict):
            _merge(errors, "block_fields", "Must be a JSON object of the block's fields.")
        else:
            block_type = variant.block_type
            for name, message in block_values_problems(
                block_type=block_type, values=values
            ).items():
                _merge(errors, f"block_fields.{name}" if name else "block_fields", message)
    elif not variant.template and not variant.data:
        _merge(errors, "template", "Choose a block type, write a template, or give a data payload.")
    return errors


def variant_warnings(*, variant: Variant, catalogue=None) -> list[str]:
    """What the attribute catalogue says of the variant's condition (paths no context has,
    values of the wrong type): saved anyway, shown to the editor (admin message, API field).
    `catalogue`: segments.catalogue.attribute_catalogue(), read once for many variants."""
    return [str(f) for f in condition_findings(variant.condition, catalogue=catalogue)]


def variant_validate(*, variant: Variant) -> None:
    """Raise a ValidationError by field when the variant may not be saved (see variant_problems)."""
    errors = variant_problems(variant=variant)
    if errors:
        raise ValidationError(errors)


_VARIANT_AUDITED = VARIANT_RESTORED_KEYS


@transaction.atomic
def variant_save(
    *, variant: Variant, author: str, comment: str = "", validate: bool = True
) -> Variant:
    """Validate a variant, save it and record its new state as a revision and an audit entry.

    A save that changes nothing records nothing (a repeated PUT is not a new revision). Callers
    that validated through variant_problems already (the admin's forms) pass validate=False."""
    if validate:
        variant_validate(variant=variant)
    created = variant.pk is None
    state = variant.revision_state()
    latest = None if created else VariantRevision.objects.filter(variant_id=variant.pk).first()
    variant.save()
    if latest is not None and latest.state == state:
        return variant
    VariantRevision.objects.create(variant=variant, state=state, author=author, comment=comment)
    changed = [n for n in _VARIANT_AUDITED if latest is None or latest.state.get(n) != state.get(n)]
    content_audit(
        model="variant",
        obj=str(variant),
        change="created"
        if created
        else ("reverted" if comment.startswith("Reverted") else "updated"),
        actor=author,
        fields=() if created else changed,
    )
    return variant


@transaction.atomic
def variant_delete(*, variant: Variant, author: str) -> None:
    """Delete a variant (refused by field while it is its placement's default)."""
    label = str(variant)
    try:
        variant.delete()
    except ProtectedError as exc:
        raise ValidationError(
            {"default_variant": "This variant is its placement's default: choose another first."},
            code="protected",
        ) from exc
    content_audit(model="variant", obj=label, change="deleted", actor=author)


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
    return variant_save(
        variant=variant,
        author=author,
        comment=f"Reverted to the revision of {revision.created_at:%Y-%m-%d %H:%M:%S}",
    )


def placement_problems(*, placement: Placement, exclude=None) -> dict[str, list[str]]:
    """Everything the admin and the API refuse in a placement, by field: the model's checks (key,
    uniqueness, a live default), a default that belongs to another placement, a missing default
    while the placement has variants, a changed key."""
    errors = _model_problems(placement, exclude)
    default_id = placement.default_variant_id
    if placement.pk is not None:
        stored_key = Placement.objects.filter(pk=placement.pk).values_list("key", flat=True).first()
        if stored_key is not None and stored_key != placement.key:
            _merge(errors, "key", "The key of a placement cannot change: pages use it.")
    if default_id is not None and "default_variant" not in errors:
        owner = Variant.objects.filter(pk=default_id).values_list("placement_id", flat=True).first()
        if placement.pk is None or owner != placement.pk:
            _merge(errors, "default_variant", "Choose one of this placement's own variants.")
    elif default_id is None and placement.pk is not None and placement.variants.exists():
        _merge(
            errors,
            "default_variant",
            "Required: a placement with variants needs a default, served when nothing else "
            "matches and whenever anything fails.",
        )
    return errors


@transaction.atomic
def placement_save(
    *, placement: Placement, author: str, comment: str = "", validate: bool = True
) -> Placement:
    """Validate and save a placement; record its new state as a revision (and an audit entry)
    when a revisioned field changed.

    The key is immutable once created: pages use it, and a revision does not restore it. A first
    change to a placement whose stored state has no revision yet (created by a script, or changed
    outside the admin) records that state first, so this change too can be reverted. Callers that
    validated through placement_problems already (the admin's forms) pass validate=False.
    """
    if validate:
        errors = placement_problems(placement=placement)
        if errors:
            raise ValidationError(errors)
    if placement.pk is None:
        placement.save()
        PlacementRevision.objects.create(
            placement=placement, state=placement.revision_state(), author=author, comment=comment
        )
        content_audit(model="placement", obj=placement.key, change="created", actor=author)
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
    revision_record(
        model=PlacementRevision,
        subject=placement,
        before=before,
        after=after,
        author=author,
        comment=comment,
        restorable=placement_restorable,
    )
    content_audit(
        model="placement",
        obj=placement.key,
        change="reverted" if comment.startswith("Reverted") else "updated",
        actor=author,
        fields=[n for n in PLACEMENT_REVISIONED_FIELDS if before.get(n) != after.get(n)],
    )
    return placement


@transaction.atomic
def placement_delete(*, placement: Placement, author: str) -> None:
    """Delete a placement with its variants and history (pages asking for it get nothing)."""
    key = placement.key
    # The default protects its variant from deletion on its own: clear it first, in this
    # transaction, so that the placement's own variants go with it.
    Placement.objects.filter(pk=placement.pk).update(default_variant=None)
    placement.default_variant = None
    placement.delete()
    content_audit(model="placement", obj=key, change="deleted", actor=author)


def block_type_problems(*, block_type: BlockType, exclude=None) -> dict[str, list[str]]:
    """Everything the admin and the API refuse in a block type, by field."""
    errors = _model_problems(block_type, exclude)
    _template_problems(errors, "template", block_type.template)
    if not isinstance(block_type.schema, dict):
        _merge(errors, "schema", 'Must be a JSON object: {"type": "object", ...}.')
    else:
        for problem in block_schema_problems(schema=block_type.schema):
            _merge(errors, "schema", problem)
    return errors


_BLOCK_TYPE_AUDITED = ("key", "name", "description", "template", "schema")


@transaction.atomic
def block_type_save(*, block_type: BlockType, author: str, validate: bool = True) -> BlockType:
    """Validate and save a block type, with an audit entry naming the fields that changed."""
    if validate:
        errors = block_type_problems(block_type=block_type)
        if errors:
            raise ValidationError(errors)
    created = block_type.pk is None
    stored = None if created else BlockType.objects.filter(pk=block_type.pk).first()
    changed = [
        n
        for n in _BLOCK_TYPE_AUDITED
        if stored is None or getattr(stored, n) != getattr(block_type, n)
    ]
    block_type.save()
    if created or changed:
        content_audit(
            model="block_type",
            obj=block_type.key,
            change="created" if created else "updated",
            actor=author,
            fields=() if created else changed,
        )
    return block_type


@transaction.atomic
def block_type_delete(*, block_type: BlockType, author: str) -> None:
    """Delete a block type no variant uses (refused by field otherwise)."""
    key = block_type.key
    try:
        block_type.delete()
    except ProtectedError as exc:
        raise ValidationError(
            {"key": "Variants use this block type: move them to another one first."},
            code="protected",
        ) from exc
    content_audit(model="block_type", obj=key, change="deleted", actor=author)


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
