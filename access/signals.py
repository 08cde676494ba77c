"""CORS: a browser Origin listed on an active publishable key is allowed (django-cors-headers)."""

from __future__ import annotations

from corsheaders.signals import check_request_enabled
from django.db import DatabaseError
from django.dispatch import receiver

from .keys import origin_normalize
from .selectors import publishable_origins


@receiver(check_request_enabled, dispatch_uid="access.cors_publishable_origins")
def cors_allow_publishable_origins(sender, request, **kwargs) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return False
    try:
        return origin_normalize(origin) in publishable_origins()
    except DatabaseError:
        # The database is down and the origins not cached: no CORS permission (the answer,
        # core.errors' 503, is still given; a 500 from the middleware would replace it).
        return False
