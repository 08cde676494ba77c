"""Ingestion's gauges, measured when /metrics is scraped (registered in IngestionConfig.ready)."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from django.db import DatabaseError

from . import aggregate, queue


def ingestion_gauges() -> Iterator[tuple[str, str, float]]:
    """Events waiting in Redis (queue and lanes' processing lists) and stored events waiting for
    stage 2. A store that does not answer leaves its gauge out (an absent series, not a zero)."""
    try:
        depth: int | None = queue.events_queue_length()
    except redis.RedisError:
        depth = None
    if depth is not None:
        yield (
            "mosaic_event_queue_depth",
            "Events queued in Redis, not yet stored (queue and processing lists).",
            depth,
        )
    try:
        pending: int | None = aggregate.events_pending_aggregation()
    except DatabaseError:
        pending = None
    if pending is not None:
        yield (
            "mosaic_pending_aggregates",
            "Stored events waiting for stage 2 (profile aggregates).",
            pending,
        )
