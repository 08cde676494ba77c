"""Read-side queries for content: the history of a placement or a variant, each revision with
what it changed from the one before (a line diff for long values) and whether it is current.

The mechanism is core/revisions.py (shared with segments and experiments); placement_history
and variant_history say which fields to show and how."""

from __future__ import annotations

from typing import Any

from core.revisions import (  # noqa: F401 (re-exported: the content history's types)
    DiffLine,
    FieldChange,
    History,
    HistoryEntry,
    line_diff,
    revision_history,
    shown_plain,
)

from .models import (
    BlockType,
    Placement,
    PlacementRevision,
    Variant,
    VariantRevision,
    placement_restorable,
    variant_restorable,
)

HISTORY_LABELS = {"name": "name", "description": "description", "default_variant": "default"}
VARIANT_HISTORY_LABELS = {
    "name": "name",
    "status": "status",
    "priority": "priority",
    "locale": "locale",
    "starts_at": "starts",
    "ends_at": "ends",
    "condition": "condition",
    "block_type": "block type",
    "block_fields": "block fields",
    "template": "template",
    "data": "data",
}
PlacementHistory = History  # the name callers used before variants had one too


def _placement_shown(state: dict[str, Any], name: str) -> str:
    if name == "default_variant":
        value = state.get("default_variant_key") or state.get("default_variant")
        return str(value) if value is not None else "none"
    return str(state.get(name) or "")


def placement_history(*, placement: Placement, limit: int = 10) -> History:
    """The placement's latest revisions (see revision_history; one query more for its state)."""
    stored = Placement.objects.filter(pk=placement.pk).values(
        "name", "description", "default_variant"
    )
    return revision_history(
        revisions=PlacementRevision.objects.filter(placement=placement),
        current=placement_restorable(stored.first() or {}),
        restorable=placement_restorable,
        labels=HISTORY_LABELS,
        shown=_placement_shown,
        limit=limit,
    )


def variant_history(*, variant: Variant, limit: int = 10) -> History:
    """The variant's latest revisions, with a line diff of its template, condition, block fields
    and data between revisions (see revision_history; a query for its state and one for the
    block types' keys, which are few)."""
    stored = Variant.objects.filter(pk=variant.pk).first()
    block_keys = dict(BlockType.objects.values_list("pk", "key"))

    def shown(state: dict[str, Any], name: str) -> str:
        value = state.get(name)
        if name == "block_type":
            return "none" if value is None else block_keys.get(value, f"#{value} (deleted)")
        return shown_plain(state, name)

    return revision_history(
        revisions=VariantRevision.objects.filter(variant=variant),
        current=variant_restorable(stored.revision_state()) if stored else {},
        restorable=variant_restorable,
        labels=VARIANT_HISTORY_LABELS,
        shown=shown,
        limit=limit,
    )
