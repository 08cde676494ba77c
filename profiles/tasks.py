"""Celery tasks of profiles (cached documents, Redis persistence after erasures): thin,
idempotent, retried with a delay.

Each keeps the dotted name it was registered under in segments.tasks (`name=`): beat schedules,
stored django-celery-beat rows and messages already queued under that name keep working.
"""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from django.db import OperationalError

from . import privacy, services

logger = logging.getLogger(__name__)


@shared_task(
    name="segments.tasks.profiles_documents_rewrite",
    bind=True,
    autoretry_for=(redis.RedisError,),
    retry_backoff=5,
)
def profiles_documents_rewrite(self, profile_ids: list[int]) -> int:
    """Rewrite these profiles' cached documents (e.g. after their segment was deleted)."""
    return services.profile_cache_write(profile_ids=profile_ids[:5000])


@shared_task(
    name="segments.tasks.redis_persistence_rewrite",
    autoretry_for=(redis.RedisError,),
    default_retry_delay=60,
    max_retries=5,
)
def redis_persistence_rewrite() -> str:
    """After erasures (batched, privacy.persistence_rewrite_schedule): rewrite Redis's AOF."""
    outcome = privacy.persistence_rewrite()
    logger.info("redis_persistence_rewrite %s", outcome)
    return outcome


@shared_task(
    name="segments.tasks.profile_documents_ensure",
    autoretry_for=(redis.RedisError, OperationalError),
    default_retry_delay=30,
)
def profile_documents_ensure() -> int:
    """Beat, every minute: rebuild the Redis profile documents if Redis lost them (bounded)."""
    written = services.profile_documents_ensure()
    if written:
        logger.info("profile_documents_ensure rebuilt %d documents", written)
    return written
