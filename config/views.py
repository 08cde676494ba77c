"""Operational endpoints of the project: the health check and the metrics page."""

from __future__ import annotations

import redis
from django.db import connection
from django.http import HttpResponse, JsonResponse

from core import metrics
from core.redis import get_redis
from experiments.services import exposures_lost
from personalization import profile_cache


def healthz(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )


def metrics_view(request):
    """Counters of fallbacks and failures of this process (Prometheus text format)."""
    extra = {"mosaic_exposures_lost_total": exposures_lost.value, **profile_cache.metrics()}
    text = metrics.render_text(extra=extra)
    return HttpResponse(text, content_type="text/plain; version=0.0.4")
