"""Read-side queries for content: the history of a placement or a variant, each revision with
what it changed from the one before (a line diff for long values) and whether it is current.

One mechanism for both: `revision_history` reads any revision model's rows; placement_history
and variant_history say which fields to show and how."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

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
DIFF_MAX_LINES = 200


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "add", "del", "ctx" (unchanged context) or "gap" (lines skipped)
    text: str


@dataclass(frozen=True, slots=True)
class FieldChange:
    label: str
    before: str | None  # None: the first revision shown for this object, nothing to compare
    after: str
    diff: tuple[DiffLine, ...] = ()  # line by line, for values of several lines or long ones


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    revision: Any  # a PlacementRevision or VariantRevision
    changes: tuple[FieldChange, ...]
    is_current: bool  # the object is in this state now: reverting to it would change nothing


@dataclass(frozen=True, slots=True)
class History:
    entries: tuple[HistoryEntry, ...]
    total: int


PlacementHistory = History  # the name callers used before variants had one too


def line_diff(before: str, after: str) -> tuple[DiffLine, ...]:
    """A unified diff of two texts, one context line around each change, bounded in length;
    empty when both are one short line (the before → after pair says it all)."""
    if "\n" not in before + after and max(len(before), len(after)) <= 60:
        return ()
    out: list[DiffLine] = []
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=1)
    for line in list(lines)[2:]:  # the ---/+++ header
        if line.startswith("@@"):
            if out:  # between two hunks: lines left out
                out.append(DiffLine("gap", "…"))
        else:
            out.append(DiffLine({"+": "add", "-": "del"}.get(line[:1], "ctx"), line[1:]))
        if len(out) >= DIFF_MAX_LINES:
            out.append(DiffLine("gap", "… (diff cut)"))
            break
    return tuple(out)


def _changes(
    previous: dict[str, Any] | None,
    state: dict[str, Any],
    labels: dict[str, str],
    shown: Callable[[dict[str, Any], str], str],
) -> tuple[FieldChange, ...]:
    if previous is None:
        return tuple(
            FieldChange(label, None, shown(state, name))
            for name, label in labels.items()
            if state.get(name) not in (None, "", {}, [])
        )
    changes = []
    for name, label in labels.items():
        if previous.get(name) != state.get(name):
            before, after = shown(previous, name), shown(state, name)
            changes.append(FieldChange(label, before, after, line_diff(before, after)))
    return tuple(changes)


def revision_history(
    *,
    revisions: QuerySet,
    current: dict[str, Any],
    restorable: Callable[[dict[str, Any]], dict[str, Any]],
    labels: dict[str, str],
    shown: Callable[[dict[str, Any], str], str],
    limit: int = 10,
) -> History:
    """The latest `limit` revisions of one object, newest first, each with what it changed from
    the one before it and whether it is `current` (one query; a second counts the revisions when
    there are more than `limit`)."""
    rows = list(revisions[: limit + 1])
    total = len(rows)
    if total > limit:
        total = revisions.count()
    entries = tuple(
        HistoryEntry(
            revision=revision,
            changes=_changes(
                rows[index + 1].state if index + 1 < len(rows) else None,
                revision.state,
                labels,
                shown,
            ),
            is_current=restorable(revision.state) == current,
        )
        for index, revision in enumerate(rows[:limit])
    )
    return History(entries=entries, total=total)


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
        if isinstance(value, dict | list):
            return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if value else ""
        return "" if value is None else str(value)

    return revision_history(
        revisions=VariantRevision.objects.filter(variant=variant),
        current=variant_restorable(stored.revision_state()) if stored else {},
        restorable=variant_restorable,
        labels=VARIANT_HISTORY_LABELS,
        shown=shown,
        limit=limit,
    )
