"""Reads of profiles and segments, for the API, the admin and the delivery layer."""

from __future__ import annotations

import json
from typing import Any

from personalization.redis import get_redis, key

from .models import Profile, Segment, SegmentKind, SegmentMembership
from .pseudonym import pseudonymize


def profile_cache_key(profile_key: str) -> str:
    return key("profile", profile_key)


def profile_get_cached(*, profile_key: str) -> dict[str, Any] | None:
    """The profile document from Redis in one round trip; None for an unknown visitor.

    Raises redis.RedisError when Redis is unavailable: the caller decides the fallback.
    """
    raw = get_redis().get(profile_cache_key(profile_key))
    return json.loads(raw) if raw else None


def profile_get_by_visitor(*, visitor: str) -> Profile | None:
    return Profile.objects.filter(key=pseudonymize(visitor)).first()


def profile_document(*, profile: Profile, segment_keys: list[str]) -> dict[str, Any]:
    """What conditions see under `profile.`: traits, behaviour aggregates and segment keys."""
    return {
        "traits": profile.traits,
        "aggregates": profile.aggregates,
        "segments": sorted(segment_keys),
        "consent": profile.consent,
    }


def profile_segment_keys(*, profile_ids: list[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {pid: [] for pid in profile_ids}
    rows = SegmentMembership.objects.filter(profile_id__in=profile_ids).values_list(
        "profile_id", "segment__key"
    )
    for pid, segment_key in rows:
        result[pid].append(segment_key)
    return result


def segments_active_condition() -> list[Segment]:
    return list(Segment.objects.filter(is_active=True, kind=SegmentKind.CONDITION))


__all__ = [
    "profile_cache_key",
    "profile_document",
    "profile_get_by_visitor",
    "profile_get_cached",
    "profile_segment_keys",
    "segments_active_condition",
]
