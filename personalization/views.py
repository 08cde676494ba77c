"""Pages served by the delivery core: the demo storefront and the health check."""

from __future__ import annotations

import redis
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from experiments.services import exposures_lost

from . import metrics, profile_cache
from .redis import get_redis
from .templatetags.mosaic import VISITOR_COOKIE

DEMO_PERSONAS = [
    ("demo-new", "New visitor", "No history at all"),
    ("demo-loyal", "Loyal customer", "Several purchases"),
    ("demo-cart", "Cart abandoner", "Added to cart, did not buy"),
    ("demo-jazz", "Jazz fan", "Browses jazz"),
]
DEMO_PLACEMENTS = ["hero", "promo-bar", "recs"]
ONE_YEAR = 365 * 24 * 3600


def _demo_page(request, template: str, integration: str):
    """A demo storefront page; `?visitor=demo-…` picks a persona (sets the visitor cookie)."""
    chosen = request.GET.get("visitor", "")
    known = {key for key, _label, _hint in DEMO_PERSONAS}
    if chosen in known:
        # The template tag reads the cookie from the request: make the choice visible right away.
        request.COOKIES[VISITOR_COOKIE] = chosen
    visitor_id = request.COOKIES.get(VISITOR_COOKIE, "")
    response = render(
        request,
        template,
        {
            "personas": DEMO_PERSONAS,
            "visitor_id": visitor_id,
            "integration": integration,
            "placements": DEMO_PLACEMENTS,
        },
    )
    if chosen in known:
        response.set_cookie(
            VISITOR_COOKIE, chosen, max_age=ONE_YEAR, samesite="Lax", httponly=False
        )
    return response


def demo(request):
    """The storefront with the JS snippet: placements decided in the browser."""
    return _demo_page(request, "demo/index.html", "snippet")


def demo_server(request):
    """The same storefront rendered server-side with the {% mosaic_placement %} template tag."""
    return _demo_page(request, "demo/server.html", "template tag")


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
