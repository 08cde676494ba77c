"""Read-side queries for content: a placement's history, each revision with what it changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import Placement, PlacementRevision, placement_restorable

HISTORY_LABELS = {"name": "name", "description": "description", "default_variant": "default"}


@dataclass(frozen=True, slots=True)
class FieldChange:
    label: str
    before: str | None  # None: the first revision shown for this placement, nothing to compare
    after: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    revision: PlacementRevision
    changes: tuple[FieldChange, ...]
    is_current: bool  # the placement is in this state now: reverting to it would change nothing


@dataclass(frozen=True, slots=True)
class PlacementHistory:
    entries: tuple[HistoryEntry, ...]
    total: int


def _shown(state: dict[str, Any], name: str) -> str:
    if name == "default_variant":
        value = state.get("default_variant_key") or state.get("default_variant")
        return str(value) if value is not None else "none"
    return str(state.get(name) or "")


def _changes(previous: dict[str, Any] | None, state: dict[str, Any]) -> tuple[FieldChange, ...]:
    if previous is None:
        return tuple(
            FieldChange(label, None, _shown(state, name))
            for name, label in HISTORY_LABELS.items()
            if state.get(name) not in (None, "")
        )
    return tuple(
        FieldChange(label, _shown(previous, name), _shown(state, name))
        for name, label in HISTORY_LABELS.items()
        if previous.get(name) != state.get(name)
    )


def placement_history(*, placement: Placement, limit: int = 10) -> PlacementHistory:
    """The placement's latest revisions, newest first, each with what it changed from the one
    before it and whether it is the stored state (two queries; a third counts the revisions when
    there are more than `limit`)."""
    stored = Placement.objects.filter(pk=placement.pk).values(
        "name", "description", "default_variant"
    )
    current = placement_restorable(stored.first() or {})
    revisions = list(PlacementRevision.objects.filter(placement=placement)[: limit + 1])
    total = len(revisions)
    if total > limit:
        total = PlacementRevision.objects.filter(placement=placement).count()
    entries = tuple(
        HistoryEntry(
            revision=revision,
            changes=_changes(
                revisions[index + 1].state if index + 1 < len(revisions) else None, revision.state
            ),
            is_current=placement_restorable(revision.state) == current,
        )
        for index, revision in enumerate(revisions[:limit])
    )
    return PlacementHistory(entries=entries, total=total)
