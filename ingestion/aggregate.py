"""Stage 2 of ingestion: stored events folded into their profiles' aggregates, and rebuilds."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from core.redis import get_redis
from core.sqlin import filter_in
from profiles.aggregates import (
    AFFINITY_WEIGHTS,
    AggEvent,
    aggregates_apply,
    aggregates_from_events,
    category_of,
)
from profiles.aggregates import is_current as aggregates_is_current
from profiles.models import Event, Profile
from profiles.services import profiles_refresh

from .copy_encoder import json_text
from .models import PendingAggregate
from .queue import AGGREGATE_LOCK, LeasedLock, events_queue_length
from .store import EPOCH, MICROSECOND, PENDING_FIELDS

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AggregateResult:
    events: int
    profiles: int
    skipped_locked: bool = False


def events_pending_aggregation() -> int:
    return PendingAggregate.objects.count()


def profiles_aggregate_pending(*, max_events: int, yield_seconds: float = 0.0) -> AggregateResult:
    """Stage 2: fold up to `max_events` stored events into their profiles, then refresh them.

    All pending events of a run are applied per profile at once, so a profile touched by many
    batches while this stage was busy is read, written, re-segmented and re-cached once. Holds
    its own lock (erasure takes it too, so a profile's document is never re-written after its
    erasure). Idempotent: an event's pending row is deleted in the transaction that folds it in.

    `yield_seconds`: while stage 1 has a backlog (more than a batch queued), wait up to this long
    before folding: under a burst the CPU goes first to making accepted events durable, and the
    run that follows is larger, so each profile is updated fewer times. Without a backlog it
    starts at once.
    """
    r = get_redis()
    lock = LeasedLock(r, AGGREGATE_LOCK)
    if not lock.acquire():
        return AggregateResult(0, 0, skipped_locked=True)
    try:
        deadline = time.monotonic() + yield_seconds
        while (
            time.monotonic() < deadline and events_queue_length() > settings.MOSAIC_EVENT_BATCH_SIZE
        ):
            time.sleep(0.1)
        with transaction.atomic():
            head = list(
                PendingAggregate.objects.order_by("pk").values_list("pk", "profile_id")[:max_events]
            )
            if not head:
                return AggregateResult(0, 0)
            # Profiles first, then the pending rows: the same order as the recompute paths
            # (merge, retention), which delete pending rows of the profiles they rebuild.
            profile_ids = sorted({profile_id for _, profile_id in head})
            profiles = {p.pk: p for p in _profiles_locked_by_id(profile_ids=profile_ids)}
            fresh: dict[int, list[AggEvent]] = defaultdict(list)
            orphans = 0
            for profile_id, event in _pending_claim(event_pks=[pk for pk, _ in head]):
                if profile_id in profiles:
                    fresh[profile_id].append(event)
                else:
                    orphans += 1
            if orphans:
                # Not expected: erasure and merges delete their events' pending rows with the
                # profile. Logged, so that a path that forgets to is noticed.
                logger.warning("aggregation: %d pending events of missing profiles", orphans)
            updated = _profiles_apply_new_events(
                profiles=[profiles[pid] for pid in fresh], fresh=fresh
            )
        profiles_refresh(profile_ids=list(updated), profiles=list(updated.values()))
        return AggregateResult(events=sum(len(v) for v in fresh.values()), profiles=len(updated))
    finally:
        lock.release()


def profiles_aggregate_all_pending() -> AggregateResult:
    """Stage 2 until nothing is pending, for commands (import, seed) that ran stage 1 themselves.

    Stops early, `skipped_locked` set, when a worker's run holds the lock: that run (which
    re-triggers itself while anything is pending) takes over the rest.
    """
    events = profiles = 0
    while True:
        result = profiles_aggregate_pending(max_events=settings.MOSAIC_AGGREGATE_BATCH_SIZE)
        events += result.events
        profiles += result.profiles
        if result.skipped_locked or not result.events:
            return AggregateResult(events, profiles, skipped_locked=result.skipped_locked)


def _pending_claim(*, event_pks: list[int]) -> list[tuple[int, AggEvent]]:
    """Delete these pending rows; returns (profile id, event) of those actually deleted (a
    rebuild may have taken some meanwhile)."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(PendingAggregate._meta.db_table)
        with connection.cursor() as cursor:
            # The UUID as text: str() of psycopg's UUID objects cost more than the rest of a
            # row's decoding.
            returning = ", ".join(f"{f}::text" if f == "event_uuid" else f for f in PENDING_FIELDS)
            cursor.execute(
                f"DELETE FROM {table} WHERE event_id = ANY(string_to_array(%s, ',')::bigint[])"
                f" RETURNING {returning}",
                [",".join(map(str, event_pks))],
            )
            rows = cursor.fetchall()
    else:
        # SQLite runs one writer at a time: read, then delete what was read.
        query = PendingAggregate.objects.filter(pk__in=event_pks)
        rows = list(query.values_list(*PENDING_FIELDS))
        query.delete()
    return [
        (profile_id, AggEvent(str(event_uuid), type_, EPOCH + us * MICROSECOND, value, category))
        for profile_id, event_uuid, type_, us, value, category in rows
    ]


def _profiles_apply_new_events(
    *, profiles: list[Profile], fresh: dict[int, list[AggEvent]]
) -> dict[int, Profile]:
    """Fold the newly stored events into the (locked) profiles' aggregates.

    Profiles whose aggregates predate the current format are rebuilt from all their events
    instead (one query for all of them); the new events are already inserted at this point.
    """
    outdated = [p.pk for p in profiles if not aggregates_is_current(p.aggregates)]
    rebuilt = profiles_recompute_aggregates(profile_ids=outdated)
    changed = []
    for profile in profiles:
        if profile.pk in rebuilt:
            continue
        events = fresh[profile.pk]
        profile.aggregates = aggregates_apply(profile.aggregates, events)
        profile.first_seen = min(profile.first_seen, *(e.occurred_at for e in events))
        profile.last_seen = max(profile.last_seen, *(e.occurred_at for e in events))
        changed.append(profile)
    _profiles_write_aggregates(profiles=changed)
    return {**{p.pk: p for p in changed}, **rebuilt}


def _profiles_write_aggregates(*, profiles: list[Profile]) -> None:
    """Write aggregates, first_seen and last_seen of these profiles in one statement."""
    if not profiles:
        return
    table = connection.ops.quote_name(Profile._meta.db_table)
    if connection.vendor == "postgresql":
        # One UPDATE from one JSON parameter: bulk_update's CASE WHEN costs much Python per
        # profile to build, and array parameters are escaped element by element in Python.
        rows = [
            {
                "id": p.pk,
                "aggregates": p.aggregates,
                "first_seen": p.first_seen.isoformat(),
                "last_seen": p.last_seen.isoformat(),
            }
            for p in profiles
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS p SET aggregates = v.aggregates, first_seen = v.first_seen,"
                " last_seen = v.last_seen FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint,"
                " aggregates jsonb, first_seen timestamptz, last_seen timestamptz)"
                " WHERE p.id = v.id",
                [json_text(rows)],
            )
        return
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET aggregates = %s, first_seen = %s, last_seen = %s WHERE id = %s",
            [
                (json.dumps(p.aggregates), adapt(p.first_seen), adapt(p.last_seen), p.pk)
                for p in profiles
            ],
        )


def _profiles_locked_by_id(*, profile_ids: list[int]) -> list[Profile]:
    """These profiles, locked for the transaction in pk order (no deadlock between lockers).

    FOR NO KEY UPDATE: the aggregates are rewritten, the key is not; stage 1's FOR KEY SHARE
    locks on the profiles of new events go on meanwhile instead of waiting for this run.
    """
    query = Profile.objects.select_for_update(no_key=True).order_by("pk")
    return list(filter_in(query, "id", profile_ids, cast="bigint"))


def profiles_recompute_aggregates(*, profile_ids: list[int]) -> dict[int, Profile]:
    """Aggregates rebuilt from scratch from every stored event: idempotent, whatever ran before.

    Used by the retention purge and identify's merge (events removed or moved), and for profiles
    whose aggregates predate the current format. Same fold as ingestion's incremental update.
    Returns the profiles as written, by id.
    """
    if not profile_ids:
        return {}
    profiles = _profiles_locked_by_id(profile_ids=profile_ids)
    # The rebuild reads every stored event, pending ones included: they must not be folded in a
    # second time by the aggregation stage.
    PendingAggregate.objects.filter(event__profile_id__in=profile_ids).delete()
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
    for profile in profiles:
        own = events.get(profile.pk, [])
        profile.aggregates = aggregates_from_events(own)
        if own:
            profile.first_seen = min(profile.first_seen, *(e.occurred_at for e in own))
            profile.last_seen = max(profile.last_seen, *(e.occurred_at for e in own))
    _profiles_write_aggregates(profiles=profiles)
    return {p.pk: p for p in profiles}
