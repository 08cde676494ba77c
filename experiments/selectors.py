"""Read-side queries for experiments: exposures per arm and the size of the exposure buffer."""

from __future__ import annotations

from django.db.models import Count

from core.redis import get_redis

from .models import Experiment, Exposure
from .services import BUFFER_KEY


def exposure_counts(*, experiment: Experiment) -> dict[str, int]:
    """Visitors exposed so far per arm key (written rows only; the buffer is not counted)."""
    rows = (
        Exposure.objects.filter(experiment=experiment)
        .values("arm_key")
        .annotate(n=Count("id"))
        .order_by("arm_key")
    )
    return {row["arm_key"]: row["n"] for row in rows}


def exposures_buffered() -> int:
    """Exposures waiting in Redis for the next flush (raises redis.RedisError when down)."""
    return int(get_redis().llen(BUFFER_KEY))
