"""Writes for profiles, events and segments.

Event ingestion is a reliable Redis queue: the API appends validated events to a list (durable
once Redis has them), and a Celery task moves a bounded batch to a processing list, writes it to
the database in one transaction, then removes it. A worker killed mid-batch leaves the batch in
the processing list, and the next run re-processes it; event_id uniqueness makes that harmless.

Analytics consent is enforced here, at storage: events of a visitor whose current consent refuses
`analytics` (or who never chose, under MOSAIC_CONSENT_DEFAULT=opt-in) are dropped and only counted.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from personalization.redis import get_redis, key
from personalization.rules import compile_condition

from .aggregates import (
    AFFINITY_WEIGHTS,
    CENT,
    AggEvent,
    aggregates_apply,
    aggregates_from_events,
    category_of,
)
from .aggregates import is_current as aggregates_is_current
from .consent import ANALYTICS, purpose_allowed
from .models import Event, Profile, Segment, SegmentMembership
from .pseudonym import pseudonymize
from .selectors import (
    alias_targets,
    profile_alias_keys,
    profile_cache_key,
    profile_document,
    profile_segment_keys,
)

logger = logging.getLogger(__name__)

EVENT_QUEUE = key("events", "queue")
EVENT_PROCESSING = key("events", "processing")
INGEST_LOCK = key("events", "ingest-lock")
PROFILE_CACHE_TTL = 60 * 60 * 24 * 30
DROPPED_COUNTER_TTL = 60 * 60 * 24 * 90


def events_dropped_counter_key(day: datetime) -> str:
    """Per-day count of events not stored for lack of analytics consent (no visitor in it)."""
    return key("events", "dropped", "no_consent", f"{day:%Y%m%d}")


@dataclass(frozen=True, slots=True)
class IngestResult:
    taken: int
    stored: int
    duplicates: int
    profiles: int
    skipped_locked: bool = False
    dropped_no_consent: int = 0


@dataclass(frozen=True, slots=True)
class StoreResult:
    stored: int
    profile_ids: list[int]
    dropped_no_consent: int = 0


def events_enqueue(*, events: list[dict[str, Any]]) -> int:
    """Append validated events to the durable queue. Raises redis.RedisError if Redis is down."""
    if not events:
        return 0
    payloads = [json.dumps(event, default=str) for event in events]
    get_redis().rpush(EVENT_QUEUE, *payloads)
    return len(payloads)


def events_queue_length() -> int:
    r = get_redis()
    return int(r.llen(EVENT_QUEUE)) + int(r.llen(EVENT_PROCESSING))


def events_ingest_pending(*, max_events: int) -> IngestResult:
    """Write up to `max_events` queued events (plus any batch a crashed run left) to the DB."""
    r = get_redis()
    lock = r.lock(INGEST_LOCK, timeout=settings.MOSAIC_INGEST_LOCK_SECONDS, blocking_timeout=0)
    if not lock.acquire(blocking=False):
        return IngestResult(0, 0, 0, 0, skipped_locked=True)
    try:
        # A crashed run's batch comes first, so nothing accepted is ever stranded.
        raw = r.lrange(EVENT_PROCESSING, 0, -1)
        if not raw:
            pipe = r.pipeline()
            for _ in range(max_events):
                pipe.lmove(EVENT_QUEUE, EVENT_PROCESSING, "LEFT", "RIGHT")
            raw = [item for item in pipe.execute() if item is not None]
        if not raw:
            return IngestResult(0, 0, 0, 0)
        events = [json.loads(item) for item in raw]
        result = events_store(events=events)
        profiles_refresh(profile_ids=result.profile_ids)
        r.delete(EVENT_PROCESSING)
        return IngestResult(
            taken=len(events),
            stored=result.stored,
            duplicates=len(events) - result.stored - result.dropped_no_consent,
            profiles=len(result.profile_ids),
            dropped_no_consent=result.dropped_no_consent,
        )
    finally:
        lock.release()


def _parse_time(value: str | None) -> datetime:
    parsed = parse_datetime(value) if value else None
    if parsed is None:
        return timezone.now()
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def events_store(*, events: list[dict[str, Any]]) -> StoreResult:
    """Insert events not stored yet and update the touched profiles' aggregates, atomically.

    Aggregates are updated from the newly inserted events only (in time order), in the same
    transaction as the insert: a batch re-run after a crash inserts nothing and changes nothing.
    Events of visitors without analytics consent are not stored (and create no profile); they
    are counted in a per-day Redis counter instead.
    """
    now = timezone.now()
    by_visitor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    raw_keys = {
        visitor: pseudonymize(visitor) for visitor in {str(event["visitor"]) for event in events}
    }
    # A merged-away visitor id (identify) keeps feeding the profile that absorbed it.
    surviving = alias_targets(alias_keys=list(set(raw_keys.values())))
    for event in events:
        profile_key = raw_keys[str(event["visitor"])]
        by_visitor[surviving.get(profile_key, profile_key)].append(event)
    with transaction.atomic():
        refused = _visitors_refusing_analytics(keys=list(by_visitor))
        dropped = sum(len(by_visitor.pop(k)) for k in refused)
        # Locked (PostgreSQL): the aggregates are read, updated and written back below.
        profiles = profiles_get_or_create(keys=list(by_visitor), for_update=True)
        ids = [event["event_id"] for event in events]
        existing = {
            str(eid)
            for eid in Event.objects.filter(event_id__in=ids).values_list("event_id", flat=True)
        }
        new_rows: dict[str, Event] = {}
        fresh: dict[int, list[AggEvent]] = defaultdict(list)
        for profile_key, visitor_events in by_visitor.items():
            profile = profiles[profile_key]
            for event in visitor_events:
                event_id = str(event["event_id"])
                if event_id in existing or event_id in new_rows:
                    continue
                value = event.get("value")
                amount = Decimal(str(value)).quantize(CENT) if value is not None else None
                properties = event.get("properties") or {}
                occurred_at = _parse_time(event.get("occurred_at"))
                new_rows[event_id] = Event(
                    event_id=event_id,
                    profile=profile,
                    type=event["type"],
                    name=event.get("name") or "",
                    properties=properties,
                    value=amount,
                    currency=event.get("currency") or "",
                    context=event.get("context") or {},
                    occurred_at=occurred_at,
                    received_at=now,
                )
                fresh[profile.pk].append(
                    AggEvent(
                        event_id=event_id,
                        type=event["type"],
                        occurred_at=occurred_at,
                        value=amount,
                        category=(
                            category_of(properties) if event["type"] in AFFINITY_WEIGHTS else None
                        ),
                    )
                )
        Event.objects.bulk_create(new_rows.values(), batch_size=1000)
        touched = [profiles[k].pk for k in by_visitor]
        _profiles_apply_new_events(
            profiles=[p for p in profiles.values() if p.pk in fresh], fresh=fresh
        )
    if dropped:
        # After the commit, so a rolled-back batch (re-run later) is not counted twice. A crash
        # between commit and queue cleanup can still count a batch twice: the figure is a gauge.
        counter = events_dropped_counter_key(now)
        pipe = get_redis().pipeline(transaction=False)
        pipe.incrby(counter, dropped)
        pipe.expire(counter, DROPPED_COUNTER_TTL)
        pipe.execute()
    return StoreResult(len(new_rows), touched, dropped)


def _profiles_apply_new_events(
    *, profiles: list[Profile], fresh: dict[int, list[AggEvent]]
) -> None:
    """Incremental path: fold the newly stored events into the profiles' aggregates.

    Profiles whose aggregates predate the current format are rebuilt from all their events
    instead (one query for all of them); the new events are already inserted at this point.
    """
    outdated = [p.pk for p in profiles if not aggregates_is_current(p.aggregates)]
    if outdated:
        profiles_recompute_aggregates(profile_ids=outdated)
    changed = []
    for profile in profiles:
        if profile.pk in outdated:
            continue
        events = fresh[profile.pk]
        profile.aggregates = aggregates_apply(profile.aggregates, events)
        profile.first_seen = min(profile.first_seen, *(e.occurred_at for e in events))
        profile.last_seen = max(profile.last_seen, *(e.occurred_at for e in events))
        changed.append(profile)
    Profile.objects.bulk_update(changed, ["aggregates", "first_seen", "last_seen"], batch_size=1000)


def _visitors_refusing_analytics(*, keys: list[str]) -> set[str]:
    """Profile keys whose consent (the default for unknown visitors) refuses analytics."""
    # Keys are already resolved from aliases (events_store), so each is a profile's own key.
    consents = dict(Profile.objects.filter(key__in=keys).values_list("key", "consent"))
    return {k for k in keys if not purpose_allowed(consents.get(k), ANALYTICS)}


def profiles_get_or_create(*, keys: list[str], for_update: bool = False) -> dict[str, Profile]:
    """The profiles of these keys, created when missing; `for_update` locks them (in pk order)."""
    query = Profile.objects.filter(key__in=keys)
    if for_update:
        query = query.select_for_update().order_by("pk")
    found = {p.key: p for p in query}
    missing = [Profile(key=k) for k in keys if k not in found]
    if missing:
        Profile.objects.bulk_create(missing, ignore_conflicts=True)
        found = {p.key: p for p in query.all()}
    return found


def profiles_recompute_aggregates(*, profile_ids: list[int]) -> None:
    """Aggregates rebuilt from scratch from every stored event: idempotent, whatever ran before.

    Used by the retention purge and identify's merge (events removed or moved), and for profiles
    whose aggregates predate the current format. Same fold as ingestion's incremental update.
    """
    if not profile_ids:
        return
    rows = (
        Event.objects.filter(profile_id__in=profile_ids)
        .order_by()
        .values_list("profile_id", "event_id", "type", "occurred_at", "value", "properties")
    )
    events: dict[int, list[AggEvent]] = defaultdict(list)
    for profile_id, event_id, event_type, occurred_at, value, properties in rows.iterator(
        chunk_size=5000
    ):
        events[profile_id].append(
            AggEvent(
                event_id=str(event_id),
                type=event_type,
                occurred_at=occurred_at,
                value=value,
                category=category_of(properties) if event_type in AFFINITY_WEIGHTS else None,
            )
        )
    profiles = list(Profile.objects.filter(pk__in=profile_ids))
    for profile in profiles:
        own = events.get(profile.pk, [])
        profile.aggregates = aggregates_from_events(own)
        if own:
            profile.first_seen = min(profile.first_seen, *(e.occurred_at for e in own))
            profile.last_seen = max(profile.last_seen, *(e.occurred_at for e in own))
    Profile.objects.bulk_update(profiles, ["aggregates", "first_seen", "last_seen"], batch_size=500)


def profiles_refresh(*, profile_ids: list[int]) -> None:
    """Re-evaluate condition segments for these profiles, then rewrite their cached documents."""
    if not profile_ids:
        return
    segment_memberships_refresh(profile_ids=profile_ids)
    profile_cache_write(profile_ids=profile_ids)


def _compiled_segments() -> list[tuple[Segment, Any]]:
    from .selectors import segments_active_condition

    return [(s, compile_condition(s.condition or {})) for s in segments_active_condition()]


def segment_memberships_refresh(*, profile_ids: list[int]) -> None:
    """Real-time path: bring these profiles' condition-segment memberships up to date."""
    compiled = _compiled_segments()
    if not compiled:
        return
    profiles = list(Profile.objects.filter(pk__in=profile_ids))
    current = set(
        SegmentMembership.objects.filter(
            profile_id__in=profile_ids, segment__in=[s for s, _ in compiled]
        ).values_list("segment_id", "profile_id")
    )
    wanted = set()
    for profile in profiles:
        attributes = {"profile": profile_document(profile=profile, segment_keys=[])}
        for segment, matches in compiled:
            if matches(attributes):
                wanted.add((segment.pk, profile.pk))
    _memberships_apply(add=wanted - current, remove=current - wanted)


def _memberships_apply(*, add: set[tuple[int, int]], remove: set[tuple[int, int]]) -> None:
    with transaction.atomic():
        # One DELETE per segment, not per (segment, profile): bounded by the segment count.
        removals: dict[int, list[int]] = defaultdict(list)
        for segment_id, profile_id in remove:
            removals[segment_id].append(profile_id)
        for segment_id, profile_ids in removals.items():
            SegmentMembership.objects.filter(
                segment_id=segment_id, profile_id__in=profile_ids
            ).delete()
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(segment_id=s, profile_id=p) for s, p in add],
            ignore_conflicts=True,
            batch_size=500,
        )
        segment_ids = {s for s, _ in add | remove}
        for segment in Segment.objects.filter(pk__in=segment_ids):
            segment.member_count = segment.memberships.count()
            segment.save(update_fields=["member_count"])


@dataclass(frozen=True, slots=True)
class RecomputeResult:
    segment_key: str
    evaluated: int
    members: int
    added: int
    removed: int


def segment_recompute(*, segment_id: int, chunk_size: int = 2000) -> RecomputeResult:
    """Bulk path: evaluate the segment over every profile and swap the result in atomically."""
    segment = Segment.objects.get(pk=segment_id)
    matches = compile_condition(segment.condition or {})
    members: set[int] = set()
    evaluated = 0
    for profile in Profile.objects.only("pk", "traits", "aggregates", "consent").iterator(
        chunk_size=chunk_size
    ):
        evaluated += 1
        if matches({"profile": profile_document(profile=profile, segment_keys=[])}):
            members.add(profile.pk)
    with transaction.atomic():
        current = set(
            SegmentMembership.objects.select_for_update()
            .filter(segment=segment)
            .values_list("profile_id", flat=True)
        )
        removed, added = current - members, members - current
        SegmentMembership.objects.filter(segment=segment, profile_id__in=removed).delete()
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(segment=segment, profile_id=pid) for pid in added],
            ignore_conflicts=True,
            batch_size=1000,
        )
        segment.member_count = len(members)
        segment.computed_at = timezone.now()
        segment.save(update_fields=["member_count", "computed_at"])
    changed = list(added | removed)
    for start in range(0, len(changed), chunk_size):
        profile_cache_write(profile_ids=changed[start : start + chunk_size])
    return RecomputeResult(segment.key, evaluated, len(members), len(added), len(removed))


def profile_cache_write(*, profile_ids: list[int]) -> int:
    """Write the profile documents the decision path reads (one Redis key per visitor)."""
    profiles = list(Profile.objects.filter(pk__in=profile_ids))
    segment_keys = profile_segment_keys(profile_ids=[p.pk for p in profiles])
    aliases = profile_alias_keys(profile_ids=[p.pk for p in profiles])
    pipe = get_redis().pipeline(transaction=False)
    for profile in profiles:
        document = json.dumps(
            profile_document(profile=profile, segment_keys=segment_keys[profile.pk])
        )
        # Merged-away visitor ids read the same document: decide stays one GET for them too.
        for profile_key in (profile.key, *aliases.get(profile.pk, ())):
            pipe.set(profile_cache_key(profile_key), document, ex=PROFILE_CACHE_TTL)
    pipe.execute()
    return len(profiles)


def profile_set_traits(*, visitor: str, traits: dict[str, Any]) -> Profile:
    """Merge traits into a visitor's profile (creating it), then refresh segments and cache."""
    profile = profiles_get_or_create(keys=[pseudonymize(visitor)])[pseudonymize(visitor)]
    profile.traits = {**profile.traits, **traits}
    profile.save(update_fields=["traits"])
    profiles_refresh(profile_ids=[profile.pk])
    return profile
