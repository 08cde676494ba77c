"""Privacy writes: consent changes, export and erasure of a visitor, retention, the audit log.

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
from datetime import datetime
from typing import Any

import redis
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from core.errors import Unavailable, unavailable_on_redis_error
from core.redis import get_redis, key, primary_clients
from core.signals import keys_written
from experiments.models import Exposure

from .consent import consent_merge
from .models import (
    AuditAction,
    AuditEntry,
    ConsentRecord,
    Event,
    PendingAggregate,
    Profile,
    StaticIdType,
    StaticListEntry,
)
from .selectors import (
    profile_export_data,
    profile_keys_resolve,
    redis_visitor_scan,
)
from .services import (
    AGGREGATE_LOCK,
    ingest_lanes,
    profiles_get_or_create,
    profiles_recompute_aggregates,
    profiles_refresh,
    segments_member_count_refresh,
    time_due_forget,
)

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


def audit_record(
    *, action: str, actor: str, subject: str = AuditEntry.REDACTED, details: dict | None = None
) -> AuditEntry:
    """Append one audit entry. `details` must hold counts and choices, never personal data."""
    return AuditEntry.objects.create(
        action=action, actor=actor or "api", subject=subject, details=details or {}
    )


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
        from .tasks import redis_persistence_rewrite

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
    By name: recommendations imports segments."""
    if not apps.is_installed("recommendations"):
        return 0
    model = apps.get_model("recommendations", "VisitorRecommendation")
    deleted, _ = model.objects.filter(profile=profile).delete()
    return deleted


@dataclass(frozen=True, slots=True)
class PurgeResult:
    batches: int
    deleted: int
    profiles: int
    complete: bool


def events_purge_expired(
    *, older_than: datetime, batch_size: int = 5000, max_batches: int = 20
) -> PurgeResult:
    """Delete events that occurred before `older_than`, oldest first, in bounded batches.

    Each batch is one transaction that also recomputes its profiles' aggregates, so a run cut
    short leaves consistent profiles; `complete` says whether anything older is left. Profiles
    are kept (they hold consent and traits) even when no event is left.
    """
    touched: set[int] = set()
    deleted = batches = 0
    complete = False
    for _ in range(max_batches):
        with transaction.atomic():
            rows = list(
                Event.objects.filter(occurred_at__lt=older_than)
                .order_by("occurred_at", "id")
                .values_list("pk", "profile_id")[:batch_size]
            )
            if not rows:
                complete = True
                break
            Event.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
            profile_ids = {profile_id for _, profile_id in rows}
            profiles_recompute_aggregates(profile_ids=list(profile_ids))
        batches += 1
        deleted += len(rows)
        touched |= profile_ids
        if len(rows) < batch_size:
            complete = True
            break
    _seen_dates_clamp(older_than=older_than)
    ids = sorted(touched)
    for start in range(0, len(ids), 1000):
        profiles_refresh(profile_ids=ids[start : start + 1000])
    if deleted:
        audit_record(
            action=AuditAction.RETENTION_PURGE,
            actor="system",
            details={
                "older_than": older_than.isoformat(),
                "events": deleted,
                "profiles": len(ids),
                "batches": batches,
                "complete": complete,
            },
        )
    return PurgeResult(batches, deleted, len(ids), complete)


def _seen_dates_clamp(*, older_than: datetime) -> int:
    """Profiles' first_seen and last_seen no older than what retention keeps: the earliest and
    latest event left, or the retention boundary when none is left (a purged date would still
    say when the visitor was active). Returns the profiles changed."""
    events = Event.objects.filter(profile_id=OuterRef("pk")).order_by().values("profile_id")
    earliest = Subquery(events.annotate(at=Min("occurred_at")).values("at")[:1])
    latest = Subquery(events.annotate(at=Max("occurred_at")).values("at")[:1])
    changed = Profile.objects.filter(first_seen__lt=older_than).update(
        first_seen=Coalesce(earliest, Value(older_than))
    )
    changed += Profile.objects.filter(last_seen__lt=older_than).update(
        last_seen=Coalesce(latest, Value(older_than))
    )
    return changed


def export_json(data: dict[str, Any]) -> str:
    """The export as a downloadable document (what the admin action serves)."""
    return json.dumps(data, indent=2, sort_keys=True, default=str)
