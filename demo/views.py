"""The demo storefront: one shop page, decided in the browser (snippet) or on the server (tag)."""

from __future__ import annotations

from django.shortcuts import render

from personalization.templatetags.mosaic import VISITOR_COOKIE

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
