"""Reads of API keys, with a short in-process cache so authenticating is not a query per request.

A revoked key stops working at once in the process that revoked it and within CACHE_SECONDS in
every other process.
"""

from __future__ import annotations

import threading
import time

from .keys import key_digest, origin_normalize
from .models import ApiKey, ApiKeyKind

CACHE_SECONDS = 10.0

_lock = threading.Lock()
_keys: dict[str, tuple[float, ApiKey | None]] = {}
_origins: list[tuple[float, frozenset[str]]] = []


def api_key_get_active(*, raw: str) -> ApiKey | None:
    """The active key whose digest matches `raw`, or None."""
    digest = key_digest(raw)
    now = time.monotonic()
    cached = _keys.get(digest)
    if cached and cached[0] > now:
        return cached[1]
    api_key = ApiKey.objects.filter(hashed_key=digest, is_active=True).first()
    with _lock:
        if len(_keys) > 10_000:  # unknown keys are cached too: bound the memory a scan can use
            _keys.clear()
        _keys[digest] = (now + CACHE_SECONDS, api_key)
    return api_key


def publishable_origins() -> frozenset[str]:
    """Normalised origins of every active publishable key (for CORS and the origin check)."""
    now = time.monotonic()
    if _origins and _origins[0][0] > now:
        return _origins[0][1]
    origins: set[str] = set()
    rows = ApiKey.objects.filter(kind=ApiKeyKind.PUBLISHABLE, is_active=True).values_list(
        "allowed_origins", flat=True
    )
    for allowed in rows:
        origins.update(origin_normalize(o) for o in allowed or [])
    origins.discard("")
    value = frozenset(origins)
    with _lock:
        _origins[:] = [(now + CACHE_SECONDS, value)]
    return value


def caches_clear() -> None:
    with _lock:
        _keys.clear()
        _origins.clear()
