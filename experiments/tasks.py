"""Celery tasks for experiments: thin wrappers over services, idempotent, returning numbers."""

from __future__ import annotations

import logging
from dataclasses import asdict

import redis
from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, autoretry_for=(redis.RedisError,), retry_backoff=2, max_retries=5)
def exposures_flush(self, batch_size: int = 1000, max_batches: int = 10) -> dict[str, int]:
    """Write buffered exposures to the database (bounded: at most max_batches per run)."""
    result = services.exposures_flush(batch_size=batch_size, max_batches=max_batches)
    totals = {
        **asdict(result),
        "skipped_locked": int(result.skipped_locked),
        "lost_in_this_process": services.exposures_lost.value,
    }
    if result.read or result.skipped_locked:
        logger.info("exposures_flush %s", totals)
    return totals
