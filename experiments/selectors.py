"""Read-side queries for experiments: exposures per arm and the size of the exposure buffer."""

from __future__ import annotations

from django.db.models import Count

from core.redis import get_redis

from .models import Experiment, Exposure
from .services import exposures_buffered_count


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
    return exposures_buffered_count(get_redis())


def results_latest(*, experiment: Experiment):
    """The latest stored results computation, or None."""
    from .models import ResultSnapshot

    return ResultSnapshot.objects.filter(experiment=experiment).order_by("-computed_at").first()


def results_history(*, experiment: Experiment, limit: int = 500) -> list[dict]:
    """Cumulative primary-metric lift per computation (oldest first), for the lift-over-time
    chart: time, users, and per treatment arm the relative lift and its interval."""
    from .models import ResultSnapshot

    rows = list(
        ResultSnapshot.objects.filter(experiment=experiment)
        .order_by("-computed_at")
        .values("computed_at", "users", "data")[:limit]
    )
    out = []
    for row in reversed(rows):
        metrics = (row["data"] or {}).get("metrics") or []
        primary = next((m for m in metrics if m.get("role") == "primary"), None)
        lifts = {}
        if primary is not None:
            for arm, entry in primary["estimates"].items():
                rel = (entry.get("plain") or {}).get("relative") or {}
                lifts[arm] = {
                    "expected": rel.get("expected"),
                    "ci_low": rel.get("ci_low"),
                    "ci_high": rel.get("ci_high"),
                }
        out.append(
            {"computed_at": row["computed_at"].isoformat(), "users": row["users"], "lifts": lifts}
        )
    return out
