"""Celery tasks for ingestion and segments: thin, id-based, idempotent, retried with a delay."""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, OperationalError
from django.utils import timezone

from core.logging import log_event

from . import kpis, privacy, rfm, runs, services, webhooks
from .models import Segment, SegmentKind, WebhookDelivery

logger = logging.getLogger(__name__)

# Names of the pending-trigger keys (services.task_trigger_claim) of the two ingestion stages.
INGEST_TRIGGER = "events-ingest"
AGGREGATE_TRIGGER = "profiles-aggregate"


@shared_task(
    bind=True,
    # OperationalError/IntegrityError: a deadlock or a profile merged away mid-batch rolled the
    # batch back; it is still in the processing list and the retry writes it.
    autoretry_for=(redis.RedisError, OperationalError, IntegrityError),
    retry_backoff=2,
    retry_kwargs={"max_retries": 10},
)
def events_ingest_pending(self) -> dict[str, int]:
    """Stage 1: drain the event queue into rows in bounded batches; says what it took and stored."""
    services.task_trigger_release(INGEST_TRIGGER)
    totals = {"batches": 0, "taken": 0, "stored": 0, "duplicates": 0}
    skipped = False
    # Bounded: at most 20 batches per run; the beat safety net or the next trigger does the rest.
    for _ in range(20):
        result = services.events_ingest_pending(max_events=settings.MOSAIC_EVENT_BATCH_SIZE)
        skipped = result.skipped_locked
        if result.skipped_locked or result.taken == 0:
            break
        if totals["batches"] == 0 and (
            services.events_queue_length() > settings.MOSAIC_EVENT_BATCH_SIZE
        ):
            # A backlog: one more run, which takes the next free lane (or finds none and ends).
            events_ingest_pending.delay()
        totals["batches"] += 1
        totals["taken"] += result.taken
        totals["stored"] += result.stored
        totals["duplicates"] += result.duplicates
        if result.stored and services.task_trigger_claim(AGGREGATE_TRIGGER):
            # Stage 2 runs beside this loop (another pool process), taking everything pending.
            profiles_aggregate_pending.delay()
    # Events queued while this run held the lock had their own trigger skipped (locked): the lock
    # holder, having released it, re-triggers once if anything is left, instead of leaving it to
    # beat's 30 s safety net. A run that was itself skipped leaves that to the holder.
    if not skipped and services.events_queue_length():
        events_ingest_pending.delay()
    log_event(logger, "events.ingested", **totals)
    return totals


@shared_task(
    bind=True,
    autoretry_for=(redis.RedisError, OperationalError),
    retry_backoff=2,
    retry_kwargs={"max_retries": 10},
)
def profiles_aggregate_pending(self) -> dict[str, int]:
    """Stage 2: fold stored events into profiles, segments and cached documents; says how many."""
    services.task_trigger_release(AGGREGATE_TRIGGER)
    totals = {"runs": 0, "events": 0, "profiles": 0}
    skipped = False
    # Bounded like stage 1; each run takes everything pending up to the batch size.
    for _ in range(20):
        result = services.profiles_aggregate_pending(
            max_events=settings.MOSAIC_AGGREGATE_BATCH_SIZE,
            yield_seconds=settings.MOSAIC_AGGREGATE_YIELD_SECONDS,
        )
        skipped = result.skipped_locked
        if skipped or not result.events:
            break
        totals["runs"] += 1
        totals["events"] += result.events
        totals["profiles"] += result.profiles
    if not skipped and services.events_pending_aggregation():
        profiles_aggregate_pending.delay()
    log_event(logger, "profiles.aggregated", **totals)
    return totals


# IntegrityError: an identify merge deleted a profile while the run wrote its memberships (a
# foreign key to a row gone mid-run); a retry reads the profiles again. Redis or the database
# briefly unavailable: the run failed cleanly (old membership in force).
@shared_task(
    bind=True,
    autoretry_for=(redis.RedisError, IntegrityError, OperationalError),
    retry_backoff=5,
    max_retries=5,
)
def segment_run(self, segment_id: int, trigger: str = "schedule") -> dict[str, object]:
    """Run one segment (segments.runs); idempotent: a second request while one runs is skipped."""
    if not Segment.objects.filter(pk=segment_id, is_active=True).exists():
        return {"skipped": segment_id, "reason": "inactive or deleted"}
    run = runs.segment_run(segment_id=segment_id, trigger=trigger)
    if run is None:
        return {"skipped": segment_id, "reason": "another run holds the segment"}
    log_event(
        logger, "segment.run", segment=segment_id, run=run.pk, status=run.status, size=run.size
    )
    return {"run": run.pk, "status": run.status, "size": run.size}


# The former name of segment_run (tasks already queued under it still run).
segment_recompute = segment_run


@shared_task
def segments_recompute_all() -> int:
    """Beat: a run of every active segment, the default segment after the others."""
    return runs.segment_runs_enqueue_all(trigger="schedule")


@shared_task(
    bind=True,
    autoretry_for=(redis.RedisError, OperationalError),
    retry_backoff=30,
    retry_kwargs={"max_retries": 3},
)
def rfm_refresh(self) -> dict[str, object]:
    """Beat: score the active base (segments.rfm), then run every active RFM segment."""
    result = rfm.rfm_scores_refresh()
    queued = 0
    for segment_id in Segment.objects.filter(is_active=True, kind=SegmentKind.RFM).values_list(
        "pk", flat=True
    ):
        segment_run.delay(segment_id, "rfm-refresh")
        queued += 1
    summary = {k: v for k, v in result.as_dict().items() if k != "segments"}
    return {**summary, "segments_queued": queued}


@shared_task(
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
    result = privacy.events_purge_expired(older_than=older_than, batch_size=5000, max_batches=20)
    totals = {
        "batches": result.batches,
        "deleted": result.deleted,
        "profiles": result.profiles,
        "complete": result.complete,
    }
    log_event(logger, "events.purged", **totals)
    return totals


@shared_task(bind=True, autoretry_for=(redis.RedisError,), retry_backoff=5)
def profiles_documents_rewrite(self, profile_ids: list[int]) -> int:
    """Rewrite these profiles' cached documents (e.g. after their segment was deleted)."""
    return services.profile_cache_write(profile_ids=profile_ids[:5000])


@shared_task(bind=True, max_retries=None, acks_late=True)
def webhook_deliver(self, delivery_id: int) -> dict[str, object]:
    """One attempt of a webhook delivery; a retryable failure schedules the next attempt with
    exponential backoff and jitter (the attempt count lives on the delivery row)."""
    try:
        delivery = webhooks.webhook_attempt(delivery_id=delivery_id)
    except webhooks.Retry as exc:
        attempts = (
            WebhookDelivery.objects.filter(pk=delivery_id)
            .values_list("attempts", flat=True)
            .first()
            or 1
        )
        raise self.retry(countdown=webhooks.retry_delay(attempts), exc=exc) from None
    if delivery is None:
        return {"delivery": delivery_id, "status": "gone"}
    return {"delivery": delivery_id, "status": delivery.status, "attempts": delivery.attempts}


@shared_task
def webhook_deliveries_sweep() -> int:
    """Beat: deliveries whose send task was lost (broker down at commit) are enqueued again."""
    return webhooks.webhook_deliveries_sweep()


@shared_task(bind=True, autoretry_for=(OperationalError,), retry_backoff=60)
def segments_kpis_refresh(self) -> int:
    """Beat: today's and yesterday's KPIs of every active segment (segments.kpis)."""
    return kpis.segments_kpis_refresh(days=2)


#: Profiles re-evaluated per batch by the time-driven task; at most 20 batches a run.
TIME_DUE_BATCH = 2000


@shared_task(
    bind=True,
    autoretry_for=(redis.RedisError, OperationalError),
    retry_backoff=2,
    retry_kwargs={"max_retries": 3},
)
def profiles_refresh_time_due(self) -> dict[str, int | bool]:
    """Time-driven membership: re-evaluate the profiles whose time-dependent segments may have
    flipped by now (a Redis sorted set of due instants), on beat every ~15 s; says how many."""
    totals: dict[str, int | bool] = {"batches": 0, "due": 0, "refreshed": 0, "skipped": False}
    for _ in range(20):
        result = services.profiles_refresh_time_due(max_profiles=TIME_DUE_BATCH)
        if result.skipped_locked:
            totals["skipped"] = True
            break
        totals["batches"] += 1
        totals["due"] += result.due
        totals["refreshed"] += result.refreshed
        if result.due < TIME_DUE_BATCH:
            break
    logger.info("profiles_refresh_time_due %s", totals)
    return totals


@shared_task(autoretry_for=(redis.RedisError,), default_retry_delay=60, max_retries=5)
def redis_persistence_rewrite() -> str:
    """After erasures (batched, privacy.persistence_rewrite_schedule): rewrite Redis's AOF."""
    outcome = privacy.persistence_rewrite()
    logger.info("redis_persistence_rewrite %s", outcome)
    return outcome


@shared_task(autoretry_for=(redis.RedisError, OperationalError), default_retry_delay=30)
def profile_documents_ensure() -> int:
    """Beat, every minute: rebuild the Redis profile documents if Redis lost them (bounded)."""
    written = services.profile_documents_ensure()
    if written:
        logger.info("profile_documents_ensure rebuilt %d documents", written)
    return written
