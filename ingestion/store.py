"""Stage 1 of ingestion: queued events written as rows (COPY on PostgreSQL), each marked for
stage 2 by a PendingAggregate row in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.redis import get_redis
from core.sqlin import filter_in
from profiles.aggregates import (
    AFFINITY_WEIGHTS,
    CENT,
    category_of,
)
from profiles.consent import ANALYTICS, purpose_allowed
from profiles.models import Event, Profile
from profiles.selectors import alias_targets

from .copy_encoder import event_copy_line, pending_copy_line
from .models import PendingAggregate
from .queue import (
    DROPPED_COUNTER_TTL,
    LeasedLock,
    event_profile_key,
    events_dropped_counter_key,
    ingest_lanes,
    legacy_processing_adopt,
    queue_take,
)


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


def events_ingest_pending(*, max_events: int) -> IngestResult:
    """Stage 1: write up to `max_events` queued events (plus any batch a crashed run left) as rows.

    The profiles' aggregates, segments and cached documents are brought up to date by stage 2
    (`profiles_aggregate_pending`), which the task triggers after each run.
    """
    r = get_redis()
    lane = _lane_acquire(r)
    if lane is None:
        return IngestResult(0, 0, 0, 0, skipped_locked=True)
    processing, lock = lane
    try:
        # A crashed run's batch comes first, so nothing accepted is ever stranded.
        raw = cast(list[bytes], r.lrange(processing, 0, -1))
        raw = raw or legacy_processing_adopt(r, processing)
        if not raw:
            raw = queue_take(r, processing, max_events)
        if not raw:
            return IngestResult(0, 0, 0, 0)
        events = [orjson.loads(item) for item in raw]
        result = events_store(events=events)
        r.delete(processing)
        return IngestResult(
            taken=len(events),
            stored=result.stored,
            duplicates=len(events) - result.stored - result.dropped_no_consent,
            profiles=len(result.profile_ids),
            dropped_no_consent=result.dropped_no_consent,
        )
    finally:
        lock.release()


def _lane_acquire(r) -> tuple[str, Any] | None:
    """The first free lane's processing list and its (acquired, kept-alive) lock; None when all
    are busy."""
    for processing, lock_name in ingest_lanes():
        lock = LeasedLock(r, lock_name)
        if lock.acquire():
            return processing, lock
    return None


def _parse_time(value: str | None) -> datetime:
    parsed = None
    if value:
        try:
            # The queue holds what validation produced: ISO-8601, which fromisoformat reads
            # about ten times faster than parse_datetime's regular expression.
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = parse_datetime(value)
    if parsed is None:
        return timezone.now()
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def events_store(*, events: list[dict[str, Any]]) -> StoreResult:
    """Insert the events not stored yet, and mark them for aggregation, in one transaction.

    Profiles are created for new visitors; their aggregates are not touched here: each new event
    gets a PendingAggregate row in the same transaction, which `profiles_aggregate_pending` folds
    in later. A batch re-run after a crash inserts nothing and marks nothing. Events of visitors
    without analytics consent are not stored (and create no profile); they are counted in a
    per-day Redis counter instead.
    """
    now = timezone.now()
    by_visitor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    event_keys = [event_profile_key(event) for event in events]
    # A merged-away visitor id (identify) keeps feeding the profile that absorbed it.
    surviving = alias_targets(alias_keys=list(set(event_keys)))
    for event, profile_key in zip(events, event_keys, strict=True):
        by_visitor[surviving.get(profile_key, profile_key)].append(event)
    with transaction.atomic():
        known = _profiles_for_ingest(keys=list(by_visitor))
        refused = {
            k
            for k in by_visitor
            if not purpose_allowed(known[k][1] if k in known else None, ANALYTICS)
        }
        dropped = sum(len(by_visitor.pop(k)) for k in refused)
        # Sorted: lanes creating the same new profiles wait on each other in one order only.
        missing = sorted(k for k in by_visitor if k not in known)
        if missing and alias_targets(alias_keys=missing):
            # Merged away after the aliases were read above (the lookup may have waited for
            # that merge): retried from the queue, so these events reach the surviving profile.
            raise IntegrityError("ingestion: a visitor's profile was merged meanwhile; retry")
        if missing:
            Profile.objects.bulk_create([Profile(key=k) for k in missing], ignore_conflicts=True)
            known.update(_profiles_for_ingest(keys=missing))
        new_rows: dict[str, tuple] = {}
        for profile_key, visitor_events in by_visitor.items():
            profile_id = known[profile_key][0]
            for event in visitor_events:
                event_id = str(event["event_id"])
                if event_id in new_rows:
                    continue
                value = event.get("value")
                new_rows[event_id] = (
                    event_id,
                    profile_id,
                    event["type"],
                    event.get("name") or "",
                    event.get("properties") or {},
                    Decimal(str(value)).quantize(CENT) if value is not None else None,
                    event.get("currency") or "",
                    event.get("context") or {},
                    _parse_time(event.get("occurred_at")),
                    now,
                )
        rows = list(new_rows.values())
        try:
            # Optimistic: a batch normally holds only new events, and the unique index checks
            # that anyway; looking up 5,000 ids first, for every batch, cost more than this.
            with transaction.atomic():
                pks = _events_insert(rows=rows)
        except (IntegrityError, connection.Database.IntegrityError):
            # Some were stored already (a batch re-run after a crash, a client's resend). COPY
            # raises the driver's own error: Django does not wrap a cursor's copy().
            ids = [row[0] for row in rows]
            existing = {
                str(eid)
                for eid in filter_in(Event.objects.all(), "event_id", ids, cast="uuid").values_list(
                    "event_id", flat=True
                )
            }
            rows = [row for row in rows if row[0] not in existing]
            pks = _events_insert(rows=rows)
        _pending_add(
            rows=[
                (
                    pk,
                    row[1],
                    row[0],
                    row[2],
                    (row[8] - EPOCH) // MICROSECOND,
                    row[5],
                    category_of(row[4]) if row[2] in AFFINITY_WEIGHTS else None,
                )
                for pk, row in zip(pks, rows, strict=True)
            ]
        )
    if dropped:
        # After the commit, so a rolled-back batch (re-run later) is not counted twice. A crash
        # between commit and queue cleanup can still count a batch twice: the figure is a gauge.
        counter = events_dropped_counter_key(now)
        pipe = get_redis().pipeline(transaction=False)
        pipe.incrby(counter, dropped)
        pipe.expire(counter, DROPPED_COUNTER_TTL)
        pipe.execute()
    return StoreResult(len(rows), sorted({row[1] for row in rows}), dropped)


def _profiles_for_ingest(*, keys: list[str]) -> dict[str, tuple[int, dict | None]]:
    """(id, consent) of these keys' existing profiles, by key; keys are resolved from aliases.

    On PostgreSQL the rows are locked FOR KEY SHARE until the batch commits (in id order, as
    every profile locker takes them): the events' profile column has no database constraint,
    and this lock is what keeps an erasure or a merge from deleting a profile under the batch.
    Either waits for the commit, then moves or deletes the new events too; a batch that waited
    for one finds the profile gone. Only the analytics choice is read (as text, in SQL), not
    the whole consent document: decoding thousands of JSON documents per batch showed in the
    ingestion profile. Consent values are booleans (consent_merge): "true"/"false" is all.
    """
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Profile._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, key, consent ->> %s FROM {table}"
                " WHERE key = ANY(string_to_array(%s, ',')) ORDER BY id FOR KEY SHARE",
                [ANALYTICS, ",".join(keys)],
            )
            rows = cursor.fetchall()
    else:
        # SQLite has no row locks, and runs one writing transaction at a time anyway.
        query = filter_in(Profile.objects.all(), "key", keys, cast="text").annotate(
            analytics=KT(f"consent__{ANALYTICS}")
        )
        rows = query.values_list("pk", "key", "analytics")
    return {
        key_: (pk, None if analytics is None else {ANALYTICS: analytics == "true"})
        for pk, key_, analytics in rows
    }


_EVENT_COLUMNS = (
    "id",
    "event_id",
    "profile_id",
    "type",
    "name",
    "properties",
    "value",
    "currency",
    "context",
    "occurred_at",
    "received_at",
)


def _events_insert(*, rows: list[tuple]) -> list[int]:
    """Insert event rows (tuples in _EVENT_COLUMNS order without the id); returns their ids.

    An event_id stored already raises IntegrityError (the unique index): the caller inserts in
    a savepoint and, on that error, again without the stored ones.
    """
    if not rows:
        return []
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Event._meta.db_table)
        with connection.cursor() as cursor:
            # Ids drawn up front (one round trip) so that COPY, which returns nothing, can write
            # them, and the pending-aggregation rows can name them.
            # The sequence is looked up once (a materialized CTE): inside nextval() it was
            # evaluated for every row, most of this query's time (docs/benchmarks.md).
            cursor.execute(
                "WITH s AS MATERIALIZED"
                " (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq)"
                " SELECT array_agg(nextval(s.seq)) FROM s, generate_series(1, %s)",
                [Event._meta.db_table, len(rows)],
            )
            (pks,) = cursor.fetchone()
            # A batch shares one received_at (events_store's `now`): formatted once, not per row
            # (an aware datetime's isoformat is not free, per row).
            received = rows[0][9]
            shared = received.isoformat() if all(row[9] is received for row in rows) else None
            lines = "".join(
                [event_copy_line(pk, row, shared) for pk, row in zip(pks, rows, strict=True)]
            )
            columns = ", ".join(_EVENT_COLUMNS)
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write(lines)
        return pks
    created = Event.objects.bulk_create(
        [Event(**dict(zip(_EVENT_COLUMNS[1:], row, strict=True))) for row in rows],
        batch_size=1000,
    )
    return [event.pk for event in created]


def _pending_add(*, rows: list[tuple]) -> None:
    """Mark stored events for aggregation: (event pk, *PENDING_FIELDS) per event."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(PendingAggregate._meta.db_table)
        columns = ", ".join(("event_id", *PENDING_FIELDS))
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as c,
        ):
            c.write("".join(map(pending_copy_line, rows)))
        return
    PendingAggregate.objects.bulk_create(
        [
            PendingAggregate(**dict(zip(("event_id", *PENDING_FIELDS), row, strict=True)))
            for row in rows
        ],
        batch_size=1000,
    )


PENDING_FIELDS = ("profile_id", "event_uuid", "type", "occurred_us", "value", "category")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
