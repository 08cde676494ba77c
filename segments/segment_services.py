"""Writes of segments themselves (create, update, delete, run requests), for the API and admin."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .models import Segment, SegmentMembership
from .revisions import segment_revision_record, segment_state

_CHUNK = 1000


def segment_run_enqueue(*, segment: Segment, trigger: str) -> None:
    """A run of this segment once the current transaction commits (the worker does it)."""
    from . import tasks

    segment_id = segment.pk
    transaction.on_commit(lambda: tasks.segment_run.delay(segment_id, trigger))


def segment_create(*, data: dict[str, Any], author: str = "") -> Segment:
    with transaction.atomic():
        segment = Segment.objects.create(**data)
        segment_revision_record(segment=segment, before=None, author=author, comment="Created")
        segment_run_enqueue(segment=segment, trigger="created")
    return segment


def segment_save(*, segment: Segment, author: str, comment: str = "") -> bool:
    """Save a segment (created or changed by a form) and record its revision when a revisioned
    field changed; True when one did (or the segment is new)."""
    with transaction.atomic():
        stored = (
            Segment.objects.select_for_update().filter(pk=segment.pk).first()
            if segment.pk is not None
            else None
        )
        before = segment_state(stored) if stored is not None else None
        segment.save()
        revision = segment_revision_record(
            segment=segment, before=before, author=author, comment=comment
        )
    return before is None or revision is not None


def segment_update(
    *, segment: Segment, data: dict[str, Any], author: str = "", comment: str = ""
) -> Segment:
    """Apply `data` to the segment; when that changes it, save, record the revision and run it
    again. A change to nothing (a repeated PUT) writes nothing and runs nothing."""
    with transaction.atomic():
        for name, value in data.items():
            setattr(segment, name, value)
        stored = Segment.objects.filter(pk=segment.pk).first()
        if stored is not None and all(
            getattr(stored, name) == getattr(segment, name) for name in data
        ):
            return segment
        segment_save(segment=segment, author=author, comment=comment)
        if segment.is_active:
            segment_run_enqueue(segment=segment, trigger="updated")
    return segment


def segment_delete(*, segment: Segment) -> int:
    """Delete the segment (memberships, history, runs with it); its former members' cached
    documents are rewritten afterwards by the worker, in bounded batches."""
    from . import tasks

    with transaction.atomic():
        members = list(
            SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)
        )
        segment.delete()

        def rewrite() -> None:
            for start in range(0, len(members), _CHUNK):
                tasks.profiles_documents_rewrite.delay(members[start : start + _CHUNK])

        transaction.on_commit(rewrite)
    return len(members)
