"""Celery tasks of segments: thin, id-based, idempotent, retried with a delay (the ingestion and
profile tasks once here moved to ingestion/tasks.py and profiles/tasks.py, their names kept)."""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from django.db import IntegrityError, OperationalError

from core.logging import log_event

from . import kpis, rfm, runs, services, webhooks
from .models import Segment, SegmentKind, WebhookDelivery

logger = logging.getLogger(__name__)


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
