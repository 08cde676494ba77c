"""Reads of profiles: their documents in Redis, aliases, recommendations."""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps

from core.redis import get_redis, key
from core.sqlin import filter_in

from .models import Profile


def profile_cache_key(profile_key: str) -> str:
    return key("profile", profile_key)


def profile_get_cached(*, profile_key: str) -> dict[str, Any] | None:
    """The profile document from Redis in one round trip; None for an unknown visitor.

    Raises redis.RedisError when Redis is unavailable: the caller decides the fallback.
    """
    raw = get_redis().get(profile_cache_key(profile_key))
    return json.loads(raw) if raw else None


def profile_document(
    *, profile: Profile, segment_keys: list[str], recs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What conditions see under `profile.`: traits, behaviour aggregates, segment keys, each
    model score namespace at the top level (`profile.rfm.segment`, see Profile.scores), and the
    visitor's precomputed recommendations (read by decide with the profile in one GET)."""
    document = {
        # Scores first: a namespace can never shadow the keys below.
        **(profile.scores or {}),
        "traits": profile.traits,
        "aggregates": profile.aggregates,
        "segments": sorted(segment_keys),
        "consent": profile.consent,
    }
    if recs:
        document["recs"] = recs
    return document


def profile_recommendations(*, profile_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The precomputed top-N of these profiles ({"run": id, "items": [sku, ...]}), if any.

    Looked up by name, like alias_model(): recommendations imports profiles (its rows point at
    profiles), so importing it here would make the two apps import each other.
    """
    if not profile_ids or not apps.is_installed("recommendations"):
        return {}
    model = apps.get_model("recommendations", "VisitorRecommendation")
    rows = filter_in(model.objects.all(), "profile", profile_ids, cast="bigint")
    return {
        pid: {"run": run_id, "items": items}
        for pid, run_id, items in rows.values_list("profile_id", "run_id", "items")
    }


def profile_get_by_key(*, profile_key: str) -> Profile | None:
    return Profile.objects.filter(key=profile_key).first()


def alias_model():
    # Aliases (identity app) point merged-away visitor keys at the surviving profile. Looked up by
    # name, not imported: identity imports profiles (VisitorAlias has a foreign key to Profile),
    # so a module import here would make the two apps import each other.
    return apps.get_model("identity", "VisitorAlias")


def alias_targets(*, alias_keys: list[str]) -> dict[str, str]:
    """For each of these keys that is a merged-away alias: the surviving profile's key."""
    if not alias_keys:
        return {}
    rows = filter_in(alias_model().objects.all(), "alias_key", alias_keys, cast="text")
    rows = rows.values_list("alias_key", "profile__key")
    return dict(rows)


def profile_alias_keys(*, profile_ids: list[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {}
    if not profile_ids:
        return result
    rows = filter_in(alias_model().objects.all(), "profile", profile_ids, cast="bigint")
    rows = rows.values_list("profile_id", "alias_key")
    for profile_id, alias_key in rows:
        result.setdefault(profile_id, []).append(alias_key)
    return result


def profile_keys_resolve(*, profile_key: str) -> list[str]:
    """Every pseudonymous key meaning this visitor: its profile's own key first, then the aliases.

    A key merged into another profile resolves to that profile (and its other aliases); an
    unknown key is returned alone.
    """
    return profile_and_keys_resolve(profile_key=profile_key)[1]


def profile_and_keys_resolve(*, profile_key: str) -> tuple[Profile | None, list[str]]:
    """The profile this key means (None if unknown) and profile_keys_resolve's key list."""
    aliases = alias_model()
    profile = profile_get_by_key(profile_key=profile_key)
    if profile is None:
        alias = aliases.objects.filter(alias_key=profile_key).select_related("profile").first()
        profile = alias.profile if alias else None
    if profile is None:
        return None, [profile_key]
    alias_keys = sorted(aliases.objects.filter(profile=profile).values_list("alias_key", flat=True))
    return profile, [profile.key, *alias_keys]
