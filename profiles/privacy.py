"""Privacy: export and erasure of a visitor (consent changes: services.consent_record; the
audit log: audit.py; retention: ingestion/retention.py).

Export and erasure reach every store that holds the visitor: profiles' own tables, the
ingestion queue and locks, segments' memberships, history, deliveries and static lists,
experiments' exposures, recommendations, Redis. That list is written out here, in one module,
so that a reader (or an auditor) sees every store an erasure touches; it is the one module of
profiles that imports the apps above it (declared in pyproject's import contracts).

Every function takes the pseudonymous profile key, never the raw visitor id: the API layer
pseudonymises at the boundary. Consent changes, exports and erasures each leave an AuditEntry;
an erasure's entry holds a random erasure id and counts only, and redacts the subject of the
visitor's earlier entries, so nothing left in the log points back at the erased visitor.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import Unavailable, unavailable_on_redis_error
from core.pseudonym import pseudonymize
from core.redis import KEY_PREFIX, get_redis, key, primary_clients
from core.signals import keys_written
from experiments.models import Exposure
from ingestion.models import PendingAggregate
from ingestion.queue import AGGREGATE_LOCK, ingest_lanes
from segments.models import (
    SegmentMembership,
    SegmentMembershipChange,
    StaticIdType,
    StaticListEntry,
    WebhookDelivery,
)
from segments.services import segments_member_count_refresh, time_due_forget

from .audit import audit_record
from .models import AuditAction, AuditEntry, ConsentRecord, Event, Profile
from .selectors import profile_and_keys_resolve, profile_get_cached, profile_keys_resolve

logger = logging.getLogger(__name__)

# How long an erasure waits for a running ingestion batch (which may hold the visitor's events
# in memory) before giving up with ErasureBusy; the caller retries.
ERASE_LOCK_WAIT_SECONDS = 10
ERASE_UNAVAILABLE = "Erasure could not run now; nothing was erased, retry later."
ERASE_RETRY_AFTER = 10


class ErasureBusy(Unavailable):
    """Ingestion held its lock too long; nothing was erased, retry later (503, Retry-After)."""

    field = "visitor"
    message = ERASE_UNAVAILABLE
    retry_after = ERASE_RETRY_AFTER


@unavailable_on_redis_error(
    "Redis unavailable; an export would be incomplete, retry later.", field="visitor"
)
def profile_export(*, profile_key: str, actor: str) -> dict[str, Any] | None:
    """Everything held on the visitor (None if nothing), and an audit entry saying it was taken.

    A key merged into another profile (identity aliases) exports that profile.
    """
    data = profile_export_data(profile_key=profile_key)
    if data is None:
        return None
    audit_record(
        action=AuditAction.EXPORT,
        actor=actor,
        subject=data["profile"]["key"] if data["profile"] else profile_key,
        details={
            "events": len(data["events"]),
            "consent_records": len(data["consent_history"]),
            "segments": len(data["segments"]),
            "exposures": len(data["experiments"]["exposures"]),
            "redis_keys": len(data["redis"]["keys"]),
            "redis_pending_items": len(data["redis"]["pending_items"]),
        },
    )
    return data


@dataclass(frozen=True, slots=True)
class ErasureResult:
    erased: bool
    erasure_id: str
    counts: dict[str, int] = field(default_factory=dict)


@unavailable_on_redis_error(ERASE_UNAVAILABLE, field="visitor", retry_after=ERASE_RETRY_AFTER)
def profile_erase(*, profile_key: str, actor: str) -> ErasureResult:
    """Erase the visitor from the database and Redis; idempotent (`erased` False the second time).

    A key merged into another profile (identity aliases) erases that whole profile, aliases too.

    Holds every ingestion lock (each lane's and aggregation's), so no batch in flight re-creates
    the profile from events read before the erasure, and no aggregation run re-writes its cached
    document after it. Redis goes first: if it fails, nothing is erased and the caller can retry;
    the database part is one transaction. Raises ErasureBusy or Unavailable (both 503).
    """
    r = get_redis()
    locks = [
        r.lock(
            name,
            timeout=settings.MOSAIC_INGEST_LOCK_SECONDS,
            blocking_timeout=ERASE_LOCK_WAIT_SECONDS,
        )
        for name in (*(lock for _, lock in ingest_lanes()), AGGREGATE_LOCK)
    ]
    held = []
    for lock in locks:
        if not lock.acquire(blocking=True):
            for taken in held:
                taken.release()
            raise ErasureBusy()
        held.append(lock)
    try:
        profile_keys = profile_keys_resolve(profile_key=profile_key)
        redis_counts = _redis_erase(profile_keys=profile_keys)
        with transaction.atomic():
            db_counts = _database_erase(profile_keys=profile_keys)
            counts = {**db_counts, **redis_counts}
            result = ErasureResult(
                erased=any(counts.values()), erasure_id=uuid.uuid4().hex, counts=counts
            )
            # Earlier entries named the visitor's pseudonymous key: they keep what happened, but
            # no longer say to whom.
            redacted = sum(AuditEntry.objects.redact_subject(k) for k in profile_keys)
            audit_record(
                action=AuditAction.ERASE,
                actor=actor,
                details={
                    "erasure_id": result.erasure_id,
                    "erased": result.erased,
                    "counts": counts,
                    "audit_entries_redacted": redacted,
                },
            )
    finally:
        for lock in held:
            lock.release()
    if result.erased:
        transaction.on_commit(persistence_rewrite_schedule)
    return result


# Redis's append-only file keeps every write it was sent until the file is rewritten: an erased
# profile document stays on disk after its DEL. After erasures, one BGREWRITEAOF (batched: the
# first erasure in a window schedules it, the others ride along) rewrites the file from the
# data set, which no longer holds them.
AOF_REWRITE_PENDING = key("persistence", "aof_rewrite_pending")
AOF_REWRITE_DELAY_SECONDS = 60


def persistence_rewrite_schedule() -> bool:
    """Schedule one AOF rewrite AOF_REWRITE_DELAY_SECONDS from now unless one is pending;
    True when this call scheduled it. Never raises: the erasure itself is done."""
    try:
        if not get_redis().set(
            AOF_REWRITE_PENDING, "1", nx=True, ex=AOF_REWRITE_DELAY_SECONDS * 10
        ):
            return False
        from profiles.tasks import redis_persistence_rewrite

        redis_persistence_rewrite.apply_async(countdown=AOF_REWRITE_DELAY_SECONDS)
        return True
    except Exception:  # a lost schedule is caught up by the next erasure
        logger.warning("erasure: could not schedule the Redis AOF rewrite", exc_info=True)
        return False


def persistence_rewrite() -> str:
    """Rewrite Redis's append-only file now (BGREWRITEAOF), so erased data leaves the disk;
    returns what happened. A rewrite already running is fine: Redis schedules another after it."""
    r = get_redis()
    r.delete(AOF_REWRITE_PENDING)
    # Each node of a Redis Cluster keeps its own file: every primary rewrites its own.
    outcomes = {_aof_rewrite(node) for node in primary_clients(r)}
    return "rewrite_started" if "rewrite_started" in outcomes else "aof_off"


def _aof_rewrite(r) -> str:
    try:
        if r.config_get("appendonly").get("appendonly") != "yes":
            return "aof_off"
    except redis.ResponseError:  # CONFIG disabled (managed Redis): try the rewrite anyway
        pass
    try:
        r.bgrewriteaof()
    except redis.ResponseError as exc:
        if "already in progress" not in str(exc) and "scheduled" not in str(exc):
            raise
    return "rewrite_started"


def _redis_erase(*, profile_keys: list[str]) -> dict[str, int]:
    found = redis_visitor_scan(profile_keys=profile_keys)
    r = get_redis()
    pipe = r.pipeline(transaction=False)
    for name in found["keys"]:
        pipe.delete(name)
    for name, items in found["list_items"].items():
        for raw in items:
            pipe.lrem(name, 0, raw)
    try:
        results = pipe.execute()
    finally:
        keys_written(found["keys"])
    keys_deleted = sum(int(n) for n in results[: len(found["keys"])])
    items_removed = sum(int(n) for n in results[len(found["keys"]) :])
    return {"redis_keys": keys_deleted, "redis_pending_items": items_removed}


def _database_erase(*, profile_keys: list[str]) -> dict[str, int]:
    counts = {
        "profiles": 0,
        "aliases": 0,
        "events": 0,
        "consent_records": 0,
        "memberships": 0,
        "exposures": 0,
        "recommendations": 0,
    }
    # The count of exposures alone (the delete cascades to their stored experiment values).
    _, deleted = Exposure.objects.filter(profile_key__in=profile_keys).delete()
    counts["exposures"] = deleted.get(Exposure._meta.label, 0)
    profile = Profile.objects.select_for_update().filter(key=profile_keys[0]).first()
    # Static segment lists name visitors (and users) by the same keyed hashes.
    listed = StaticListEntry.objects.filter(id_type=StaticIdType.VISITOR, key__in=profile_keys)
    counts["static_list_entries"], _ = listed.delete()
    if profile is None:
        return counts
    if profile.user_key:
        user_entries = StaticListEntry.objects.filter(
            id_type=StaticIdType.USER, key=profile.user_key
        )
        counts["static_list_entries"] += user_entries.delete()[0]
    segment_ids = list(profile.memberships.values_list("segment_id", flat=True))
    counts["aliases"] = len(profile_keys) - 1
    counts["events"] = profile.events.count()
    counts["consent_records"] = profile.consent_history.count()
    counts["memberships"] = len(segment_ids)
    counts["recommendations"] = _recommendations_erase(profile=profile)
    # Not personal data (event ids), but nothing of the visitor should wait for aggregation.
    PendingAggregate.objects.filter(event__profile=profile).delete()
    time_due_forget(profile_ids=[profile.pk])
    # The cascade removes events, consent history, memberships and aliases with the profile.
    profile.delete()
    counts["profiles"] = 1
    segments_member_count_refresh(segment_ids=segment_ids)
    return counts


def _recommendations_erase(*, profile: Profile) -> int:
    """The visitor's precomputed recommendations (their copy in the Redis profile document goes
    with the document). Their events go with the profile, so the next training leaves them out.
    By name: recommendations imports profiles."""
    if not apps.is_installed("recommendations"):
        return 0
    model = apps.get_model("recommendations", "VisitorRecommendation")
    deleted, _ = model.objects.filter(profile=profile).delete()
    return deleted


def export_json(data: dict[str, Any]) -> str:
    """The export as a downloadable document (what the admin action serves)."""
    return json.dumps(data, indent=2, sort_keys=True, default=str)


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
    profile, profile_keys = profile_and_keys_resolve(profile_key=profile_key)
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


def _isoformat(value) -> str | None:
    return value.isoformat() if value is not None else None
