"""The demo storefront: one shop page, decided in the browser (snippet) or on the server (tag)."""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from personalization.templatetags.mosaic import VISITOR_COOKIE

DEMO_PERSONAS = [
    ("demo-new", "New visitor", "No history at all"),
    ("demo-loyal", "Loyal customer", "Several purchases"),
    ("demo-cart", "Cart abandoner", "Added to cart, did not buy"),
    ("demo-jazz", "Jazz fan", "Browses jazz"),
    ("demo-lapsed", "Lapsed customer", "Bought twice, long ago (RFM win-back)"),
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


ECHO_KEY = "demo-webhook-echo"
ECHO_KEEP = 50


@csrf_exempt
def webhook_echo(request):
    """The demo's webhook receiver: POST records a segment webhook (and whether its signature
    verifies with its trigger's secret); GET lists the last ones received, newest first."""
    from core.redis import get_redis, key
    from segments.models import WebhookDelivery
    from segments.webhooks import SIGNATURE_HEADER, signature_verify

    r = get_redis()
    name = key("demo", ECHO_KEY)
    if request.method == "POST":
        body = request.body[:65536]
        delivery_id = request.headers.get("X-Mosaic-Delivery", "")[:20]
        delivery = (
            WebhookDelivery.objects.select_related("trigger").filter(pk=int(delivery_id)).first()
            if delivery_id.isdigit()
            else None
        )
        valid = delivery is not None and signature_verify(
            secret=delivery.trigger.secret,
            body=body,
            header=request.headers.get(SIGNATURE_HEADER, ""),
        )
        try:
            payload = json.loads(body)
        except ValueError:
            payload = body.decode(errors="replace")
        record = {
            "received_at": timezone.now().isoformat(),
            "signature_valid": valid,
            "body": payload,
        }
        r.lpush(name, json.dumps(record))
        r.ltrim(name, 0, ECHO_KEEP - 1)
        return JsonResponse({"received": True, "signature_valid": valid})
    received = [json.loads(item) for item in r.lrange(name, 0, ECHO_KEEP - 1)]
    return JsonResponse({"received": received}, json_dumps_params={"indent": 2})
