"""Celery tasks for ingestion and segments: thin, id-based, idempotent, retried with a delay."""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from django.conf import settings

from . import services
from .models import Segment, SegmentKind

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    autoretry_for=(redis.RedisError,),
    retry_backoff=2,
    retry_kwargs={"max_retries": 10},
)
def events_ingest_pending(self) -> dict[str, int]:
    """Drain the event queue in bounded batches; says how many it took, stored and skipped."""
    totals = {"batches": 0, "taken": 0, "stored": 0, "duplicates": 0}
    # Bounded: at most 20 batches per run; the beat safety net or the next trigger does the rest.
    for _ in range(20):
        result = services.events_ingest_pending(max_events=settings.MOSAIC_EVENT_BATCH_SIZE)
        if result.skipped_locked or result.taken == 0:
            break
        totals["batches"] += 1
        totals["taken"] += result.taken
        totals["stored"] += result.stored
        totals["duplicates"] += result.duplicates
    logger.info("events_ingest_pending %s", totals)
    return totals


@shared_task(bind=True, autoretry_for=(redis.RedisError,), retry_backoff=5)
def segment_recompute(self, segment_id: int) -> dict[str, int | str]:
    if not Segment.objects.filter(pk=segment_id, is_active=True).exists():
        return {"skipped": segment_id}
    result = services.segment_recompute(segment_id=segment_id)
    logger.info("segment_recompute %s", result)
    return {
        "segment": result.segment_key,
        "evaluated": result.evaluated,
        "members": result.members,
        "added": result.added,
        "removed": result.removed,
    }


@shared_task
def segments_recompute_all() -> int:
    ids = list(
        Segment.objects.filter(is_active=True, kind=SegmentKind.CONDITION).values_list(
            "pk", flat=True
        )
    )
    for segment_id in ids:
        segment_recompute.delay(segment_id)
    return len(ids)
