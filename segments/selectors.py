"""Reads of profiles and segments, for the API, the admin and the delivery layer.

Also the privacy reads: everything held on one visitor (for export) and the audit log.
"""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from django.utils import timezone

from core.pseudonym import pseudonymize
from core.redis import KEY_PREFIX, get_redis, key
from core.sqlin import filter_in
from experiments.models import Exposure

from .models import (
    AuditEntry,
    ConsentRecord,
    Event,
    Profile,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentMembershipChange,
    WebhookDelivery,
)


def profile_cache_key(profile_key: str) -> str:
    return key("profile", profile_key)


def profile_get_cached(*, profile_key: str) -> dict[str, Any] | None:
    """The profile document from Redis in one round trip; None for an unknown visitor.

    Raises redis.RedisError when Redis is unavailable: the caller decides the fallback.
    """
    raw = get_redis().get(profile_cache_key(profile_key))
    return json.loads(raw) if raw else None


def profile_document(*, profile: Profile, segment_keys: list[str]) -> dict[str, Any]:
    """What conditions see under `profile.`: traits, behaviour aggregates, segment keys, and
    each model score namespace at the top level (`profile.rfm.segment`, see Profile.scores)."""
    return {
        # Scores first: a namespace can never shadow the four keys below.
        **(profile.scores or {}),
        "traits": profile.traits,
        "aggregates": profile.aggregates,
        "segments": sorted(segment_keys),
        "consent": profile.consent,
    }


def profile_segment_keys(*, profile_ids: list[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {pid: [] for pid in profile_ids}
    rows = filter_in(SegmentMembership.objects.all(), "profile", profile_ids, cast="bigint")
    rows = rows.values_list("profile_id", "segment__key")
    for pid, segment_key in rows:
        result[pid].append(segment_key)
    return result


def segments_active_condition() -> list[Segment]:
    return list(Segment.objects.filter(is_active=True, kind=SegmentKind.CONDITION))


def profile_get_by_key(*, profile_key: str) -> Profile | None:
    return Profile.objects.filter(key=profile_key).first()


def _isoformat(value) -> str | None:
    return value.isoformat() if value is not None else None


def alias_model():
    # Aliases (identity app) point merged-away visitor keys at the surviving profile. Looked up by
    # name, not imported: identity imports segments (VisitorAlias has a foreign key to Profile),
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
    return _profile_and_keys_resolve(profile_key=profile_key)[1]


def _profile_and_keys_resolve(*, profile_key: str) -> tuple[Profile | None, list[str]]:
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


def profile_exposures(*, profile_keys: list[str]) -> list[dict[str, Any]]:
    rows = Exposure.objects.filter(profile_key__in=profile_keys).select_related("experiment")
    return [
        {
            "experiment": row.experiment.key,
            "arm": row.arm_key,
            "first_exposed_at": _isoformat(row.first_exposed_at),
        }
        for row in rows
    ]


def redis_visitor_scan(*, profile_keys: list[str]) -> dict[str, Any]:
    """Every Mosaic Redis key that names the visitor, and every list item that holds it.

    Keys are found by name (one of the visitor's keys appears in it: the profile cache, alias
    caches, exposure dedupe keys); list items (the event queue, the exposure buffer) by content:
    one of the keys in the item, or a JSON object whose "visitor" pseudonymises to one of them.
    Cost is a SCAN of the Mosaic keyspace plus reading its lists: fine for rare privacy
    requests, not for a hot path.
    """
    r = get_redis()
    named: set[str] = set()
    for profile_key in profile_keys:
        named.update(
            k.decode() for k in r.scan_iter(match=f"{KEY_PREFIX}*{profile_key}*", count=1000)
        )
    wanted = set(profile_keys)
    items: dict[str, list[bytes]] = {}
    for name in r.scan_iter(match=f"{KEY_PREFIX}*", count=1000, _type="list"):
        held = [raw for raw in r.lrange(name, 0, -1) if _item_holds_visitor(raw, wanted)]
        if held:
            items[name.decode()] = held
    return {"keys": sorted(named), "list_items": items}


def _item_holds_visitor(raw: bytes, profile_keys: set[str]) -> bool:
    text = raw.decode(errors="replace")
    if any(k in text for k in profile_keys):
        return True
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if not isinstance(data, dict) or "visitor" not in data:
        return False
    return pseudonymize(str(data["visitor"])) in profile_keys


def profile_export_data(*, profile_key: str) -> dict[str, Any] | None:
    """Everything Mosaic holds on one visitor, JSON-ready; None when no store holds anything.

    Raises redis.RedisError when Redis is unavailable (an export must not be silently partial).
    """
    profile, profile_keys = _profile_and_keys_resolve(profile_key=profile_key)
    cached = profile_get_cached(profile_key=profile_keys[0])
    redis_found = redis_visitor_scan(profile_keys=profile_keys)
    exposures = profile_exposures(profile_keys=profile_keys)
    queued = [_decode_item(raw) for held in redis_found["list_items"].values() for raw in held]
    if not (profile or cached or redis_found["keys"] or queued or exposures):
        return None
    data: dict[str, Any] = {
        "generated_at": timezone.now().isoformat(),
        "profile": None,
        "events": [],
        "consent_history": [],
        "segments": [],
        "experiments": {
            "exposures": exposures,
            "assignments": [],
            "note": (
                "Experiment assignments are not stored: each is recomputed on request from a "
                "hash of the pseudonymous key. Recorded exposures are listed above."
            ),
        },
        "redis": {
            "profile_document": cached,
            "keys": redis_found["keys"],
            "pending_items": queued,
        },
        # The audit log's entries about this visitor (consent changes, exports, merges...):
        # they name the person by their pseudonymous key, so they are theirs to see too.
        "audit_entries": [
            {
                "action": entry.action,
                "actor": entry.actor,
                "created_at": _isoformat(entry.created_at),
                "details": entry.details,
            }
            for entry in AuditEntry.objects.filter(subject__in=profile_keys).order_by(
                "created_at", "id"
            )
        ],
    }
    if profile is None:
        return data
    data["profile"] = {
        "key": profile.key,
        "user_key": profile.user_key,
        "traits": profile.traits,
        "aggregates": profile.aggregates,
        "consent": profile.consent,
        "aliases": profile_keys[1:],
        "first_seen": _isoformat(profile.first_seen),
        "last_seen": _isoformat(profile.last_seen),
    }
    data["events"] = [
        {
            "event_id": str(e.event_id),
            "type": e.type,
            "name": e.name,
            "properties": e.properties,
            "value": str(e.value) if e.value is not None else None,
            "currency": e.currency,
            "context": e.context,
            "occurred_at": _isoformat(e.occurred_at),
            "received_at": _isoformat(e.received_at),
        }
        for e in Event.objects.filter(profile=profile).order_by("occurred_at", "id").iterator()
    ]
    data["consent_history"] = [
        {
            "purposes": c.purposes,
            "source": c.source,
            "policy_version": c.policy_version,
            "gpc": c.gpc,
            "recorded_at": _isoformat(c.recorded_at),
        }
        for c in ConsentRecord.objects.filter(profile=profile).order_by("recorded_at", "id")
    ]
    data["segments"] = [
        {"key": m.segment.key, "since": _isoformat(m.since)}
        for m in SegmentMembership.objects.filter(profile=profile)
        .select_related("segment")
        .order_by("segment__key")
    ]
    data["segment_history"] = [
        {"segment": c.segment.key, "event": c.event, "at": _isoformat(c.at)}
        for c in SegmentMembershipChange.objects.filter(profile=profile)
        .select_related("segment")
        .order_by("at", "id")
    ]
    data["webhook_deliveries"] = [
        {
            "segment": d.trigger.segment.key,
            "event": d.event,
            "status": d.status,
            "created_at": _isoformat(d.created_at),
            "body": d.body,
        }
        for d in WebhookDelivery.objects.filter(profile=profile)
        .select_related("trigger__segment")
        .order_by("created_at", "id")
    ]
    return data


def _decode_item(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


__all__ = [
    "alias_model",
    "profile_cache_key",
    "profile_document",
    "profile_export_data",
    "profile_exposures",
    "profile_get_by_key",
    "profile_get_cached",
    "profile_keys_resolve",
    "profile_segment_keys",
    "redis_visitor_scan",
    "segments_active_condition",
]
