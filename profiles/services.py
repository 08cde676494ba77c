"""Writes of profiles: get-or-create, traits, consent, and the documents the decision path reads."""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.db import transaction
from django.utils import timezone

from core.errors import unavailable_on_redis_error
from core.pseudonym import pseudonymize
from core.redis import get_redis, key
from core.signals import keys_written

from . import hooks
from .audit import audit_record
from .consent import consent_merge
from .models import AuditAction, ConsentRecord, Profile
from .selectors import (
    profile_alias_keys,
    profile_cache_key,
    profile_document,
    profile_keys_resolve,
    profile_recommendations,
)

PROFILE_CACHE_TTL = 60 * 60 * 24 * 30


def _document_bytes(document: dict[str, Any]) -> bytes:
    """JSON of a profile document: orjson, or the standard library for what orjson refuses
    (an undeclared trait may hold an integer beyond 64 bits; the API parses those exactly)."""
    try:
        return orjson.dumps(document)
    except TypeError:
        return json.dumps(document).encode()


def profiles_get_or_create(*, keys: list[str]) -> dict[str, Profile]:
    found = {p.key: p for p in Profile.objects.filter(key__in=keys)}
    missing = [Profile(key=k) for k in keys if k not in found]
    if missing:
        Profile.objects.bulk_create(missing, ignore_conflicts=True)
        found = {p.key: p for p in Profile.objects.filter(key__in=keys)}
    return found


def profiles_refresh(
    *, profile_ids: list[int], profiles: list[Profile] | None = None, now: float | None = None
) -> None:
    """Re-evaluate these profiles' segments (the registered refreshers, profiles.hooks), then
    rewrite their cached documents.

    `profiles`, when given, are these profiles as just written (saves re-reading them). `now`
    (epoch seconds, default the wall clock) is the instant time-dependent conditions are
    evaluated at.
    """
    if not profile_ids:
        return
    for refresher in hooks.refreshers():
        refresher(profile_ids=profile_ids, profiles=profiles, now=now)
    profile_cache_write(profile_ids=profile_ids, profiles=profiles)


def profile_cache_write(*, profile_ids: list[int], profiles: list[Profile] | None = None) -> int:
    """Write the profile documents the decision path reads (one Redis key per visitor)."""
    if profiles is None:
        profiles = list(Profile.objects.filter(pk__in=profile_ids))
    segment_keys = hooks.segment_keys([p.pk for p in profiles])
    aliases = profile_alias_keys(profile_ids=[p.pk for p in profiles])
    recs = profile_recommendations(profile_ids=[p.pk for p in profiles])
    pipe = get_redis().pipeline(transaction=False)
    written: list[str] = []
    for profile in profiles:
        document = _document_bytes(
            profile_document(
                profile=profile, segment_keys=segment_keys[profile.pk], recs=recs.get(profile.pk)
            )
        )
        # Merged-away visitor ids read the same document: decide stays one GET for them too.
        for profile_key in (profile.key, *aliases.get(profile.pk, ())):
            written.append(profile_cache_key(profile_key))
            pipe.set(written[-1], document, ex=PROFILE_CACHE_TTL)
    try:
        pipe.execute()
    finally:  # other processes hear of it from Redis; this one sees its own write at once
        keys_written(written)
    return len(profiles)


def profile_set_traits(*, visitor: str, traits: dict[str, Any]) -> Profile:
    """Merge traits into a visitor's profile (creating it), then refresh segments and cache."""
    profile_key = pseudonymize(visitor)
    with transaction.atomic():
        profile = profiles_get_or_create(keys=[profile_key])[profile_key]
        return profile_traits_merge(profile=profile, traits=traits)


def profile_traits_merge(*, profile: Profile, traits: dict[str, Any]) -> Profile:
    """Merge traits into this profile, then refresh its segments and cached document.

    One transaction with the document's write: if Redis is down the traits are not committed
    either (the caller is told the call failed; decide must not keep serving an old document
    of a profile whose traits changed)."""
    with transaction.atomic():
        profile.traits = {**profile.traits, **traits}
        profile.save(update_fields=["traits"])
        profiles_refresh(profile_ids=[profile.pk])
    return profile


# Set once every profile's document is in Redis. Gone after Redis lost its data (a restart
# without persistence, a flush, a new instance): the next run of profile_documents_ensure (beat,
# every minute) then writes the documents again from the database.
DOCUMENTS_MARK = key("profiles", "documents_complete")
DOCUMENTS_CURSOR = key("profiles", "documents_rebuild_cursor")


def profile_documents_ensure(*, chunk_size: int = 1000, max_chunks: int = 50) -> int:
    """Rebuild the profile documents the decision path reads when Redis has lost them.

    Bounded: at most `max_chunks` chunks of `chunk_size` profiles a run, in id order, resumed by
    the next run from a cursor kept in Redis; the mark is set when the last chunk is written.
    Returns the number of profiles written this run (0 when the mark says nothing is missing).
    """
    r = get_redis()
    if r.exists(DOCUMENTS_MARK):
        return 0
    lock = r.lock(key("profiles", "documents_rebuild_lock"), timeout=600, blocking=False)
    if not lock.acquire(blocking=False):
        return 0
    try:
        after = int(r.get(DOCUMENTS_CURSOR) or 0)
        written = 0
        for _ in range(max_chunks):
            ids = list(
                Profile.objects.filter(pk__gt=after)
                .order_by("pk")
                .values_list("pk", flat=True)[:chunk_size]
            )
            if not ids:
                r.set(DOCUMENTS_MARK, timezone.now().isoformat())
                r.delete(DOCUMENTS_CURSOR)
                break
            written += profile_cache_write(profile_ids=ids)
            after = ids[-1]
            r.set(DOCUMENTS_CURSOR, after)
        return written
    finally:
        lock.release()


@unavailable_on_redis_error(
    "Profile store unavailable; nothing was recorded, retry later.", field="visitor"
)
def consent_record(
    *,
    profile_key: str,
    purposes: dict[str, bool],
    source: str,
    policy_version: str,
    gpc: bool,
    actor: str,
) -> ConsentRecord:
    """Append a consent record, make it the profile's current consent, cache and audit it.

    The Redis profile document is rewritten inside the transaction: if Redis is down the change
    is rolled back (redis.RedisError), rather than leaving decide reading a stale consent.
    """
    # A merged-away visitor id records on the profile that absorbed it.
    profile_key = profile_keys_resolve(profile_key=profile_key)[0]
    with transaction.atomic():
        profiles_get_or_create(keys=[profile_key])
        profile = Profile.objects.select_for_update().get(key=profile_key)
        before = dict(profile.consent)
        state = consent_merge(before, purposes, gpc=gpc)
        record = ConsentRecord.objects.create(
            profile=profile,
            purposes=state,
            source=source,
            policy_version=policy_version,
            gpc=gpc,
        )
        profile.consent = state
        profile.save(update_fields=["consent"])
        audit_record(
            action=AuditAction.CONSENT_CHANGE,
            actor=actor,
            subject=profile_key,
            details={
                "before": before,
                "after": state,
                "source": source,
                "policy_version": policy_version,
                "gpc": gpc,
            },
        )
        # Conditions may read profile.consent, so memberships are refreshed with the cache. The
        # refresh writes the document under every alias key too: decide reads an alias's own key,
        # and it must not keep serving the old consent.
        profiles_refresh(profile_ids=[profile.pk])
    return record
