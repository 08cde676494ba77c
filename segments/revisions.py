"""Segment revisions (the one mechanism of core/revisions.py): what a revision keeps of a
segment, its history for the admin, and revert (which re-validates the condition and the kind's
settings, then saves through segment_services like any change, so the segment runs again)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from core.revisions import (
    History,
    restorable_part,
    revert_comment,
    revision_history,
    revision_record,
    shown_plain,
)
from core.validators import validate_condition_value

from .models import Segment, SegmentKind, SegmentRevision

# What a revision keeps and a revert restores (the key is fixed once created: pages, webhooks
# and the API name the segment by it).
SEGMENT_REVISIONED_FIELDS = ("name", "description", "kind", "condition", "config", "is_active")
SEGMENT_HISTORY_LABELS = {
    "name": "name",
    "description": "description",
    "kind": "kind",
    "is_active": "active",
    "condition": "condition",
    "config": "settings",
}


def segment_state(segment: Segment) -> dict[str, Any]:
    """The segment's revisioned fields as JSON."""
    return {name: getattr(segment, name) for name in SEGMENT_REVISIONED_FIELDS}


def segment_restorable(state: dict[str, Any]) -> dict[str, Any]:
    return restorable_part(state, SEGMENT_REVISIONED_FIELDS)


def segment_revision_record(
    *, segment: Segment, before: dict[str, Any] | None, author: str, comment: str = ""
) -> SegmentRevision | None:
    """Record the segment's current state when it differs from `before` (see revision_record)."""
    return revision_record(  # type: ignore[return-value]
        model=SegmentRevision,
        subject=segment,
        before=before,
        after=segment_state(segment),
        author=author,
        comment=comment,
        restorable=segment_restorable,
    )


def segment_history(*, segment: Segment, limit: int = 10) -> History:
    """The segment's latest revisions, each with what it changed (a line diff of the condition
    and settings), and which one is current."""
    stored = Segment.objects.filter(pk=segment.pk).first()
    return revision_history(
        revisions=SegmentRevision.objects.filter(segment=segment),
        current=segment_state(stored) if stored else {},
        restorable=segment_restorable,
        labels=SEGMENT_HISTORY_LABELS,
        shown=shown_plain,
        limit=limit,
    )


def segment_revert_problems(state: dict[str, Any]) -> list[str]:
    """Why a segment cannot take a revision's state back today (a kind no longer registered,
    a condition the language or the attribute catalogue now refuses, settings the kind
    refuses); empty when it can."""
    from .catalogue import condition_findings
    from .kinds import ConfigError, get_kind, kind_choices

    kind_key = state.get("kind") or SegmentKind.CONDITION
    if kind_key not in dict(kind_choices()):
        return [f"its kind {kind_key!r} is not available any more."]
    problems: list[str] = []
    condition = state.get("condition") or {}
    if kind_key != SegmentKind.CONDITION and condition:
        problems.append(f"only condition segments have a condition, not {kind_key}.")
    elif condition:
        try:
            validate_condition_value(condition)
        except ValidationError as exc:
            problems.extend(f"condition: {m}" for m in exc.messages)
        else:
            problems.extend(
                f"condition: {finding}"
                for finding in condition_findings(condition, profile_only=True)
                if finding.severity == "error"
            )
    try:
        get_kind(kind_key).clean_config(state.get("config") or {})
    except ConfigError as exc:
        problems.append(f"settings: {exc.field}: {exc.message}")
    return problems


@transaction.atomic
def segment_revert(*, revision: SegmentRevision, author: str) -> Segment:
    """Bring a segment back to a revision's state, re-validated as a new change would be; the
    revert is itself recorded, and the segment runs again (segment_services.segment_update).
    Raises ValidationError saying why when the state is no longer valid."""
    from . import segment_services

    segment = Segment.objects.select_for_update().get(pk=revision.segment_id)
    problems = segment_revert_problems(revision.state)
    if problems:
        raise ValidationError(
            f'Segment "{segment.key}" cannot go back to the revision of '
            f"{revision.created_at:%Y-%m-%d %H:%M:%S}: " + " ".join(problems),
            code="revision_invalid",
        )
    state = segment_restorable(revision.state)
    data = {name: value for name, value in state.items() if name in revision.state}
    return segment_services.segment_update(
        segment=segment, data=data, author=author, comment=revert_comment(revision)
    )
