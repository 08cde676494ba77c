"""Writes of segments themselves (create, update, delete, run requests), for the API and admin."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .models import Segment, SegmentMembership

_CHUNK = 1000


def segment_run_enqueue(*, segment: Segment, trigger: str) -> None:
    """A run of this segment once the current transaction commits (the worker does it)."""

    from . import tasks

    segment_id = segment.pk
    transaction.on_commit(lambda: tasks.segment_run.delay(segment_id, trigger))


def segment_create(*, data: dict[str, Any]) -> Segment:
    with transaction.atomic():
        segment = Segment.objects.create(**data)
        segment_run_enqueue(segment=segment, trigger="created")
    return segment


def segment_update(*, segment: Segment, data: dict[str, Any]) -> Segment:
    with transaction.atomic():
        for name, value in data.items():
            setattr(segment, name, value)
        segment.save()
        if segment.is_active:
            segment_run_enqueue(segment=segment, trigger="updated")
    return segment


def segment_delete(*, segment: Segment) -> int:
    """Delete the segment (memberships, history, runs with it); its former members' cached
    documents are rewritten afterwards by the worker, in bounded batches."""

    with transaction.atomic():
        members = list(
            SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)
        )
        segment.delete()

        def rewrite() -> None:
            from profiles import tasks as profile_tasks

            for start in range(0, len(members), _CHUNK):
                profile_tasks.profiles_documents_rewrite.delay(members[start : start + _CHUNK])

        transaction.on_commit(rewrite)
    return len(members)
