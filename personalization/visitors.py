"""Loading the visitor for a decision: one Redis round trip, consent applied, failures visible."""

from __future__ import annotations

import logging

import redis

from segments.consent import purpose_allowed
from segments.pseudonym import pseudonymize
from segments.selectors import profile_get_cached

from .decide import Visitor

logger = logging.getLogger(__name__)


def visitor_load(*, visitor_id: str | None) -> tuple[Visitor, str]:
    """The visitor and a profile status: found, new, anonymous or unavailable (Redis down)."""
    if not visitor_id:
        return Visitor(None, None, purpose_allowed(None, "personalization")), "anonymous"
    profile_key = pseudonymize(visitor_id)
    try:
        profile = profile_get_cached(profile_key=profile_key)
    except redis.RedisError:
        logger.warning("decide: Redis unavailable, deciding without the profile")
        return Visitor(profile_key, None, purpose_allowed(None, "personalization")), "unavailable"
    if profile is None:
        return Visitor(profile_key, None, purpose_allowed(None, "personalization")), "new"
    allowed = purpose_allowed(profile.get("consent"), "personalization")
    return Visitor(profile_key, profile, allowed), "found"
