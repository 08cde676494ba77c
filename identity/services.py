"""Writes for identity: identify (link a visitor to a user), profile merge, aliases, traits.

Merge rules (docs/events.md):
- the survivor is the OLDER profile (lowest first_seen, then lowest pk), so the outcome does
  not depend on which visitor called identify first;
- every row pointing at a merged-away profile (events, consent history, memberships, and rows
  of apps added later) is moved to the survivor; a row that would duplicate one the survivor
  already has (a unique constraint) is dropped;
- traits: the newer profile's value wins on conflict (it is the more recent statement);
- consent: per purpose, the more restrictive choice wins (a refusal anywhere stays a refusal);
- the merged-away visitor key becomes a VisitorAlias, and the survivor's cached document is also
  written under that key, so the decision path still needs a single Redis GET.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from django.db import IntegrityError, models, transaction

from core.errors import Conflict
from core.pseudonym import pseudonymize
from core.redis import get_redis
from core.signals import keys_written
from ingestion import aggregate as ingestion_aggregate
from profiles import services as profile_services
from profiles.models import ConsentRecord, Profile
from profiles.selectors import profile_cache_key

from .models import VisitorAlias
from .selectors import profile_resolve

logger = logging.getLogger(__name__)


class IdentifyConflict(Conflict):
    """The visitor is already linked to a different user (409)."""

    field = "visitor"
    message = (
        "This visitor is already identified as another user; start a new visitor id "
        "when a user signs out."
    )


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    profile: Profile
    merged: int


def visitor_identify(*, visitor: str, user_id: str) -> IdentifyResult:
    """Link `visitor` to `user_id`, merging every profile of that user into the oldest one."""
    visitor_key = pseudonymize(visitor)
    user_key = pseudonymize(user_id)
    if not VisitorAlias.objects.filter(alias_key=visitor_key).exists():
        # A new visitor's profile is created, and committed, before the merge's transaction
        # locks anything: an ingestion batch creating the same profile would otherwise wait for
        # this transaction while holding share locks that the merge waits for (a deadlock).
        profile_services.profiles_get_or_create(keys=[visitor_key])
    with transaction.atomic():
        candidates: dict[int, Profile] = {}
        # Both the visitor's own profile and, if it was merged before, the profile it became
        # (events sent under the old id after a merge re-create a profile with that key).
        own = Profile.objects.filter(key=visitor_key).first()
        alias = VisitorAlias.objects.select_related("profile").filter(alias_key=visitor_key)
        for profile in (own, *(a.profile for a in alias)):
            if profile is not None:
                candidates[profile.pk] = profile
        if not candidates:  # erased since: a new one
            profile = profile_services.profiles_get_or_create(keys=[visitor_key])[visitor_key]
            candidates[profile.pk] = profile
        if any(p.user_key and p.user_key != user_key for p in candidates.values()):
            raise IdentifyConflict
        for profile in Profile.objects.filter(user_key=user_key):
            candidates[profile.pk] = profile
        # Locked before their events are moved: an ingestion batch holding one of them (FOR
        # KEY SHARE) commits first and its events move too; one that comes later waits, then
        # finds the merged-away profile gone and is retried onto the survivor. Id order, as
        # every profile locker takes them. A candidate erased or merged meanwhile drops out.
        locked = list(
            Profile.objects.select_for_update().filter(pk__in=list(candidates)).order_by("pk")
        )
        if not locked:
            locked = list(profile_services.profiles_get_or_create(keys=[visitor_key]).values())
        survivor, removed_keys = profiles_merge(profiles=locked)
        if survivor.user_key != user_key:
            survivor.user_key = user_key
            survivor.save(update_fields=["user_key"])
        ingestion_aggregate.profiles_recompute_aggregates(profile_ids=[survivor.pk])
    _cache_forget(keys=removed_keys)
    # Rewrites the survivor's document under its own key and every alias key.
    profile_services.profiles_refresh(profile_ids=[survivor.pk])
    survivor.refresh_from_db()
    return IdentifyResult(survivor, len(removed_keys))


def profiles_merge(*, profiles: list[Profile]) -> tuple[Profile, list[str]]:
    """Merge into the oldest profile; returns it and the keys of the profiles merged away.

    Must run inside a transaction (the caller's): a half-merged pair is never visible.
    """
    ordered = sorted(profiles, key=lambda p: (p.first_seen, p.pk))
    survivor, newer = ordered[0], ordered[1:]
    if not newer:
        return survivor, []
    traits = dict(survivor.traits)
    consent = dict(survivor.consent)
    for loser in newer:
        traits.update(loser.traits)
        consent = consent_most_restrictive(consent, loser.consent)
        _related_move(source=loser, target=survivor)
        VisitorAlias.objects.filter(profile=loser).update(profile=survivor)
        VisitorAlias.objects.update_or_create(alias_key=loser.key, defaults={"profile": survivor})
        survivor.first_seen = min(survivor.first_seen, loser.first_seen)
        survivor.last_seen = max(survivor.last_seen, loser.last_seen)
        loser.delete()
    consent_changed = consent != survivor.consent
    survivor.traits = traits
    survivor.consent = consent
    survivor.save(update_fields=["traits", "consent", "first_seen", "last_seen"])
    if consent_changed:
        # The history stays append-only: the merged state is a new entry, not an edit.
        ConsentRecord.objects.create(profile=survivor, purposes=consent, source="identify:merge")
    return survivor, [p.key for p in newer]


def consent_most_restrictive(a: dict[str, Any], b: dict[str, Any]) -> dict[str, bool]:
    """Per purpose: refused if either refused; a purpose only one side chose keeps that choice."""
    merged: dict[str, bool] = {}
    for purpose in sorted(set(a) | set(b)):
        choices = [bool(side[purpose]) for side in (a, b) if purpose in side]
        merged[purpose] = all(choices)
    return merged


def _related_move(*, source: Profile, target: Profile) -> None:
    """Repoint every foreign key at `source` to `target`, generically (apps added later too)."""
    for relation in Profile._meta.related_objects:
        if not relation.one_to_many or relation.related_model is VisitorAlias:
            continue
        model = relation.related_model
        field = relation.field.name
        rows = model._base_manager.filter(**{field: source})
        try:
            with transaction.atomic():
                # Base manager and QuerySet.update: moving rows is not editing them, so
                # append-only models (consent history) may move with their profile.
                models.QuerySet.update(rows, **{field: target})
        except IntegrityError:
            for pk in list(rows.values_list("pk", flat=True)):
                row = model._base_manager.filter(pk=pk)
                try:
                    with transaction.atomic():
                        models.QuerySet.update(row, **{field: target})
                except IntegrityError:
                    # The survivor already has the equivalent row (e.g. segment membership).
                    models.QuerySet.delete(row)


def _cache_forget(*, keys: list[str]) -> None:
    if not keys:
        return
    names = [profile_cache_key(k) for k in keys]
    try:
        get_redis().delete(*names)
    except redis.RedisError:
        logger.warning("identify: Redis unavailable; merged profiles' cache entries expire later")
    keys_written(names)


def visitor_set_traits(*, visitor: str, traits: dict[str, Any]) -> Profile:
    """Merge already-coerced traits into the visitor's profile (through its alias if merged)."""
    profile = profile_resolve(profile_key=pseudonymize(visitor))
    if profile is None:
        return profile_services.profile_set_traits(visitor=visitor, traits=traits)
    return profile_services.profile_traits_merge(profile=profile, traits=traits)
