"""Loading the visitor for a decision: from the process's invalidated profile cache or one Redis
round trip (personalization.profile_cache), consent applied, failures visible."""

from __future__ import annotations

import json
import logging

import redis

from segments.consent import purpose_allowed
from segments.pseudonym import pseudonymize
from segments.selectors import profile_cache_key

from . import profile_cache
from .decide import Visitor

logger = logging.getLogger(__name__)


def visitor_load(*, visitor_id: str | None) -> tuple[Visitor, str]:
    """The visitor and a profile status: found, new, anonymous or unavailable (Redis down)."""
    if not visitor_id:
        return Visitor(None, None, purpose_allowed(None, "personalization")), "anonymous"
    profile_key = pseudonymize(visitor_id)
    try:
        # A fresh parse per call: the cache holds bytes, and nobody shares the dict.
        raw = profile_cache.profile_raw(profile_cache_key(profile_key))
    except redis.RedisError:
        logger.warning("decide: Redis unavailable, deciding without the profile")
        return Visitor(profile_key, None, purpose_allowed(None, "personalization")), "unavailable"
    if not raw:
        return Visitor(profile_key, None, purpose_allowed(None, "personalization")), "new"
    profile = json.loads(raw)
    allowed = purpose_allowed(profile.get("consent"), "personalization")
    return Visitor(profile_key, profile, allowed), "found"
