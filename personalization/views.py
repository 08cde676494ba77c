"""Pages served by the delivery core: the demo storefront and the health check."""

from __future__ import annotations

import redis
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from .context import build_request_context
from .decide import decide
from .snapshot import holder
from .visitors import visitor_load

DEMO_PERSONAS = [
    ("demo-new", "New visitor", "No history at all"),
    ("demo-loyal", "Loyal customer", "Several purchases"),
    ("demo-cart", "Cart abandoner", "Added to cart, did not buy"),
    ("demo-jazz", "Jazz fan", "Browses jazz"),
]
DEMO_PLACEMENTS = ["hero", "promo-bar", "recs"]


def demo(request):
    visitor_id = request.GET.get("visitor") or DEMO_PERSONAS[0][0]
    visitor, profile_status = visitor_load(visitor_id=visitor_id)
    request_context = build_request_context(
        url=request.build_absolute_uri(),
        user_agent=request.headers.get("User-Agent", ""),
        accept_language=request.headers.get("Accept-Language", ""),
    )
    decisions = decide(
        snapshot=holder.get(),
        placement_keys=DEMO_PLACEMENTS,
        visitor=visitor,
        request_context=request_context,
    )
    return render(
        request,
        "demo/index.html",
        {
            "personas": DEMO_PERSONAS,
            "visitor_id": visitor_id,
            "profile_status": profile_status,
            "decisions": decisions,
        },
    )


def healthz(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        from .redis import get_redis

        get_redis().ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )
