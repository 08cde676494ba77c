"""Celery tasks of ingestion (the two stages, retention): thin, idempotent, retried with a delay.

Each keeps the dotted name it was registered under in segments.tasks (`name=`): beat schedules,
stored django-celery-beat rows and messages already queued under that name keep working.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, OperationalError
from django.utils import timezone

from core.logging import log_event

from . import aggregate, queue, retention, store

logger = logging.getLogger(__name__)


# Names of the pending-trigger keys (queue.task_trigger_claim) of the two ingestion stages.
INGEST_TRIGGER = "events-ingest"
AGGREGATE_TRIGGER = "profiles-aggregate"


@shared_task(
    name="segments.tasks.events_ingest_pending",
    bind=True,
    # OperationalError/IntegrityError: a deadlock or a profile merged away mid-batch rolled the
    # batch back; it is still in the processing list and the retry writes it.
    autoretry_for=(redis.RedisError, OperationalError, IntegrityError),
    retry_backoff=2,
    retry_kwargs={"max_retries": 10},
)
def events_ingest_pending(self) -> dict[str, int]:
    """Stage 1: drain the event queue into rows in bounded batches; says what it took and stored."""
    queue.task_trigger_release(INGEST_TRIGGER)
    totals = {"batches": 0, "taken": 0, "stored": 0, "duplicates": 0}
    skipped = False
    # Bounded: at most 20 batches per run; the beat safety net or the next trigger does the rest.
    for _ in range(20):
        result = store.events_ingest_pending(max_events=settings.MOSAIC_EVENT_BATCH_SIZE)
        skipped = result.skipped_locked
        if result.skipped_locked or result.taken == 0:
            break
        if totals["batches"] == 0 and (
            queue.events_queue_length() > settings.MOSAIC_EVENT_BATCH_SIZE
        ):
            # A backlog: one more run, which takes the next free lane (or finds none and ends).
            events_ingest_pending.delay()
        totals["batches"] += 1
        totals["taken"] += result.taken
        totals["stored"] += result.stored
        totals["duplicates"] += result.duplicates
        if result.stored and queue.task_trigger_claim(AGGREGATE_TRIGGER):
            # Stage 2 runs beside this loop (another pool process), taking everything pending.
            profiles_aggregate_pending.delay()
    # Events queued while this run held the lock had their own trigger skipped (locked): the lock
    # holder, having released it, re-triggers once if anything is left, instead of leaving it to
    # beat's 30 s safety net. A run that was itself skipped leaves that to the holder.
    if not skipped and queue.events_queue_length():
        events_ingest_pending.delay()
    log_event(logger, "events.ingested", **totals)
    return totals


@shared_task(
    name="segments.tasks.profiles_aggregate_pending",
    bind=True,
    autoretry_for=(redis.RedisError, OperationalError),
    retry_backoff=2,
    retry_kwargs={"max_retries": 10},
)
def profiles_aggregate_pending(self) -> dict[str, int]:
    """Stage 2: fold stored events into profiles, segments and cached documents; says how many."""
    queue.task_trigger_release(AGGREGATE_TRIGGER)
    totals = {"runs": 0, "events": 0, "profiles": 0}
    skipped = False
    # Bounded like stage 1; each run takes everything pending up to the batch size.
    for _ in range(20):
        result = aggregate.profiles_aggregate_pending(
            max_events=settings.MOSAIC_AGGREGATE_BATCH_SIZE,
            yield_seconds=settings.MOSAIC_AGGREGATE_YIELD_SECONDS,
        )
        skipped = result.skipped_locked
        if skipped or not result.events:
            break
        totals["runs"] += 1
        totals["events"] += result.events
        totals["profiles"] += result.profiles
    if not skipped and aggregate.events_pending_aggregation():
        profiles_aggregate_pending.delay()
    log_event(logger, "profiles.aggregated", **totals)
    return totals


@shared_task(
    name="segments.tasks.events_purge_expired",
    bind=True,
    autoretry_for=(redis.RedisError, OperationalError),
    default_retry_delay=300,
    retry_kwargs={"max_retries": 5},
)
def events_purge_expired(self) -> dict[str, int | bool]:
    """Retention: delete events older than MOSAIC_EVENT_RETENTION_DAYS, 5,000 rows a batch.

    Bounded (20 batches a run); a backlog is finished by the next daily runs. Idempotent: a retry
    after a failure simply finds fewer rows.
    """
    older_than = timezone.now() - timedelta(days=settings.MOSAIC_EVENT_RETENTION_DAYS)
    result = retention.events_purge_expired(older_than=older_than, batch_size=5000, max_batches=20)
    totals = {
        "batches": result.batches,
        "deleted": result.deleted,
        "profiles": result.profiles,
        "complete": result.complete,
    }
    log_event(logger, "events.purged", **totals)
    return totals
