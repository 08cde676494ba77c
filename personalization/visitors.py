"""Loading the visitor for a decision: from the process's invalidated profile cache or one Redis
round trip (personalization.profile_cache), consent applied, failures visible."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
import redis

from core.logs import warn_limited
from core.pseudonym import pseudonymize
from profiles.consent import purpose_allowed
from profiles.selectors import profile_cache_key

from . import profile_cache
from .decide import Visitor

logger = logging.getLogger(__name__)

# orjson parses a document json.loads parses into the same values, with two exceptions it does
# not refuse: integers beyond 64 bits, which it turns into floats (they take 19 digits or more),
# and nesting a little deeper than json.loads manages (RecursionError there; orjson allows 1024
# levels, and each takes a "[" or "{"). Documents that might hold either, and whatever orjson
# refuses (NaN, a lone surrogate escape, a BOM, UTF-16...), are left to json.loads, which parses
# them, or fails, as it always did.
# raw.translate(_SHAPE): digits -> "0", "[" and "{" -> "[", any other byte -> " ".
_SHAPE = bytes(48 if 48 <= i <= 57 else 91 if i in b"[{" else 32 for i in range(256))
_LONG_NUMBER = b"0" * 19
_MAX_OPENINGS = 256


def _profile_parse(raw: bytes) -> Any:
    """json.loads(raw), faster."""
    if type(raw) is bytes:
        shape = raw.translate(_SHAPE)
        if _LONG_NUMBER not in shape and shape.count(b"[") < _MAX_OPENINGS:
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
    return json.loads(raw)


def visitor_load(*, visitor_id: str | None) -> tuple[Visitor, str]:
    """The visitor and a profile status: found, new, anonymous or unavailable (Redis down)."""
    if not visitor_id:
        return Visitor(
            None, None, purpose_allowed(None, "personalization"), purpose_allowed(None, "analytics")
        ), "anonymous"
    profile_key = pseudonymize(visitor_id)
    try:
        # A fresh parse per call: the cache holds bytes, and nobody shares the dict.
        raw = profile_cache.profile_raw(profile_cache_key(profile_key))
    except redis.RedisError:
        warn_limited(
            logger, "decide-redis-down", "decide: Redis unavailable, deciding without the profile"
        )
        return Visitor(
            profile_key, None, purpose_allowed(None, "personalization"), _analytics(None)
        ), "unavailable"
    if not raw:
        return Visitor(
            profile_key, None, purpose_allowed(None, "personalization"), _analytics(None)
        ), "new"
    profile = _profile_parse(raw)
    consent = profile.get("consent")
    allowed = purpose_allowed(consent, "personalization")
    return Visitor(profile_key, profile, allowed, _analytics(consent)), "found"


def _analytics(consent) -> bool:
    """Experiments count visitors, so they need analytics consent (else the default experience)."""
    return purpose_allowed(consent, "analytics")
