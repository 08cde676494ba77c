"""Operational endpoints of the project: the health check and the metrics page."""

from __future__ import annotations

import ipaddress

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse

from access.authentication import raw_key_from_request
from access.selectors import api_key_get_active
from core import metrics
from core.redis import get_redis
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


def _metrics_allowed(request) -> bool:
    """Staff signed in, a secret API key (Authorization: Bearer), or an allowlisted address."""
    user = getattr(request, "user", None)
    if user is not None and user.is_staff:
        return True
    raw = raw_key_from_request(request)
    if raw:
        api_key = api_key_get_active(raw=raw)
        if api_key is not None and api_key.is_secret:
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.MOSAIC_METRICS_ALLOWED_NETWORKS
    )


def metrics_view(request):
    """Every process's metrics summed (web workers and Celery; Prometheus text format); only for
    staff, a secret API key or an allowlisted network (MOSAIC_METRICS_ALLOWED_NETWORKS)."""
    if not _metrics_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    profile_cache.publish()  # this process's latest counts (the others publish every 0.5 s)
    return HttpResponse(metrics.render_text(), content_type=metrics.CONTENT_TYPE)
