"""Server-side placements: `{% load mosaic %}{% mosaic_placement "hero" %}`, also spelled
`{% personalized_block "hero" %}` (DESIGN.md's name: the same function under a second name).

Decides with the same core as the API (snapshot, visitor from the `mosaic_vid` cookie, context from
the request) and renders
`<div data-mosaic-placement="hero" data-mosaic-variant="…" data-mosaic-reason="…">html</div>`.
It never raises: on any failure the div is empty and its reason says why. The JS snippet, if also
on the page, leaves placements that already carry a reason alone until `mosaic.decide()`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from personalization.context import build_request_context
from personalization.decide import Decision, decide
from personalization.snapshot import holder
from personalization.visitors import visitor_load

logger = logging.getLogger(__name__)
register = template.Library()

VISITOR_COOKIE = "mosaic_vid"
_CACHE_ATTR = "_mosaic_visitor"  # one profile load per request, however many placements


def visitor_id_from_request(request) -> str | None:
    raw = request.COOKIES.get(VISITOR_COOKIE) if request is not None else None
    return unquote(raw)[:200] if raw else None


def _visitor_and_context(request):
    cached = getattr(request, _CACHE_ATTR, None) if request is not None else None
    if cached is not None:
        return cached
    visitor, _status = visitor_load(visitor_id=visitor_id_from_request(request))
    if request is None:
        request_context = build_request_context()
    else:
        request_context = build_request_context(
            url=request.build_absolute_uri(),
            referrer=request.headers.get("Referer", ""),
            user_agent=request.headers.get("User-Agent", ""),
            accept_language=request.headers.get("Accept-Language", ""),
        )
    result = (visitor, request_context)
    if request is not None:
        setattr(request, _CACHE_ATTR, result)
    return result


def placement_decide(request, placement_key: str) -> Decision:
    """The decision for one placement; a `fallback:error` decision instead of any exception."""
    try:
        visitor, request_context = _visitor_and_context(request)
        return decide(
            snapshot=holder.get(),
            placement_keys=[placement_key],
            visitor=visitor,
            request_context=request_context,
        )[placement_key]
    except Exception:
        logger.exception("placement %r: decision failed; serving it empty", placement_key)
        return Decision(placement_key, None, "", {}, "fallback:error")


@register.simple_tag(takes_context=True)
def mosaic_placement(context, placement_key) -> SafeString:
    key = str(placement_key)
    try:
        decision = placement_decide(context.get("request"), key)
        return format_html(
            '<div data-mosaic-placement="{}" data-mosaic-variant="{}" data-mosaic-reason="{}"{}>'
            "{}</div>",
            key,
            decision.variant or "",
            decision.reason,
            _recs_attributes(key, decision.data),
            # Rendered by the sandboxed, autoescaping variant templates: already safe HTML.
            mark_safe(decision.html),
        )
    except Exception:  # a template tag must never break the page
        logger.exception("placement %r: tag failed while rendering", key)
        return format_html(
            '<div data-mosaic-placement="{}" data-mosaic-reason="fallback:error"></div>', key
        )


def _recs_attributes(key: str, data: Any) -> SafeString:
    """What mosaic.js reports recommendation impressions and clicks with (the model version,
    source and placement of a recommendations block; its items carry data-sku), as the snippet
    sets them from a decide answer in the browser."""
    recs = data.get("recommendations") if isinstance(data, dict) else None
    if not isinstance(recs, dict):
        return mark_safe("")
    run = recs.get("run")
    return format_html(
        ' data-mosaic-recs="{}" data-mosaic-recs-run="{}" data-mosaic-recs-source="{}"',
        key,
        run if isinstance(run, int) else "",
        recs.get("source", ""),
    )


# DESIGN.md's name for the same tag: one function, so both spellings take one code path.
register.simple_tag(mosaic_placement, takes_context=True, name="personalized_block")
