"""Writes for profiles, events and segments.

Event ingestion is a reliable Redis queue and two stages. The API appends validated events to a
list (durable once Redis has them). Stage 1 (`events_ingest_pending`) moves a bounded batch to a
processing list, writes its new events as rows in one transaction, each with a PendingAggregate
row, then removes the batch; a worker killed mid-batch leaves it in the processing list and the
next run re-processes it (event_id uniqueness makes that harmless). Stage 2
(`profiles_aggregate_pending`) folds the pending events into their profiles' aggregates and
deletes the pending rows in one transaction, then re-evaluates condition segments and rewrites
the cached documents the decision path reads. Splitting them keeps the row writes cheap (no
profile locks or updates) and lets stage 2 coalesce: a profile touched by several batches while
it was busy is updated once.

Analytics consent is enforced here, at storage: events of a visitor whose current consent refuses
`analytics` (or who never chose, under MOSAIC_CONSENT_DEFAULT=opt-in) are dropped and only counted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import orjson
import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import unavailable_on_redis_error
from core.pseudonym import pseudonymize
from core.redis import get_redis, is_cluster, key, mget, tagged
from core.signals import keys_written
from core.sqlin import filter_in
from rules import (
    compile_condition,
    condition_fields,
    evaluation_clock,
    is_time_dependent,
)

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
from .membership import membership_changes_record
from .models import Event, PendingAggregate, Profile, Segment, SegmentMembership
from .selectors import (
    alias_targets,
    profile_alias_keys,
    profile_cache_key,
    profile_document,
    profile_recommendations,
    profile_segment_keys,
    segments_active_condition,
)
from .windows import Windows, windows_next_change, windows_read

logger = logging.getLogger(__name__)

# The event queue and every lane's processing list share the hash tag {events}: the take script
# moves items from one to the other, so on a Redis Cluster they must be on one slot (docs/redis.md).
EVENT_QUEUE = tagged("events", "queue")
EVENT_PROCESSING = tagged("events", "processing")
# Their names before the hash tag. After an upgrade a single server may still hold events under
# them (web processes of the previous version append there until they are replaced); stage 1
# drains them too, so no accepted event is lost. A cluster never had them.
LEGACY_EVENT_QUEUE = key("events", "queue")
LEGACY_EVENT_PROCESSING = key("events", "processing")
INGEST_LOCK = key("events", "ingest-lock")
AGGREGATE_LOCK = key("events", "aggregate-lock")
PROFILE_CACHE_TTL = 60 * 60 * 24 * 30
TRIGGER_TTL_MS = 2000
DROPPED_COUNTER_TTL = 60 * 60 * 24 * 90
#: Sorted set: profile id -> epoch seconds of the next instant a time-dependent segment may flip.
TIME_DUE = key("segments", "time-due")


def task_trigger_claim(name: str) -> bool:
    """True when no trigger of task `name` is pending: the caller enqueues the task then.

    Ingestion used to enqueue a task per accepted request and per stored batch, most of which
    found the work taken and did nothing, at a few milliseconds of worker CPU each. A pending
    trigger (a Redis key the task deletes when it starts) stands for all requests until then;
    it expires after TRIGGER_TTL_MS in case its task was lost. Redis down: True (enqueue).
    """
    try:
        return bool(get_redis().set(key("trigger", name), "1", nx=True, px=TRIGGER_TTL_MS))
    except redis.RedisError:
        return True


def task_trigger_release(name: str) -> None:
    """Called by the task as it starts: work arriving from now on triggers it again."""
    get_redis().delete(key("trigger", name))


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


@dataclass(frozen=True, slots=True)
class AggregateResult:
    events: int
    profiles: int
    skipped_locked: bool = False


@unavailable_on_redis_error(
    "Event queue unavailable; nothing was stored, retry later.", field="events", retry_after=5
)
def events_enqueue(*, events: list[dict[str, Any]]) -> int:
    """Append validated events to the durable queue; returns how many were queued. Raises
    core.errors.Unavailable (503, Retry-After) if Redis is down: nothing is acknowledged that
    is not queued.

    Nothing raw reaches Redis (its append-only file keeps what it is sent): each event carries
    its visitor's pseudonymous key (`visitor_key`) instead of the visitor id, and the keyed hash
    of a `user_id` (`user_key`) instead of it. Events of a visitor whose profile document says
    analytics is refused are dropped here, before queueing (counted per day, like those refused
    at storage); a visitor without a document is decided at storage, as before.
    """
    if not events:
        return 0
    keys = {str(event["visitor"]): pseudonymize(str(event["visitor"])) for event in events}
    r = get_redis()
    distinct = list(set(keys.values()))
    documents = mget(r, [profile_cache_key(k) for k in distinct])  # one per slot on a cluster
    refused = {
        profile_key
        for profile_key, raw in zip(distinct, documents, strict=True)
        if raw is not None and not purpose_allowed(orjson.loads(raw).get("consent"), ANALYTICS)
    }
    payloads = []
    for event in events:
        profile_key = keys[str(event["visitor"])]
        if profile_key in refused:
            continue
        queued = {name: value for name, value in event.items() if name not in _RAW_IDS}
        queued["visitor_key"] = profile_key
        if event.get("user_id"):
            queued["user_key"] = pseudonymize(str(event["user_id"]))
        # orjson: the API enqueues up to 500 events per request. Decimal (a serializer-validated
        # value) is not native to it: written as its string, as the validator's fast path does.
        payloads.append(orjson.dumps(queued, default=str))
    pipe = r.pipeline(transaction=False)
    if payloads:
        pipe.rpush(EVENT_QUEUE, *payloads)
    if len(payloads) < len(events):
        counter = events_dropped_counter_key(timezone.now())
        pipe.incrby(counter, len(events) - len(payloads))
        pipe.expire(counter, DROPPED_COUNTER_TTL)
    pipe.execute()
    return len(payloads)


_RAW_IDS = frozenset({"visitor", "user_id"})


def event_profile_key(event: dict[str, Any]) -> str:
    """The pseudonymous key of a queued event's visitor (`visitor_key`); events queued before
    pseudonymisation moved to the web process, and imported ones, carry the raw `visitor`."""
    profile_key = event.get("visitor_key")
    return str(profile_key) if profile_key else pseudonymize(str(event["visitor"]))


# Moves up to ARGV[1] items from the head of the queues KEYS[3..] (the legacy queue, older) then
# KEYS[1] to the processing list KEYS[2], atomically (one round trip instead of one LMOVE per
# event; the AOF records the script's effects).
_TAKE_SCRIPT = """
local want = tonumber(ARGV[1])
local taken = {}
local function take(source)
  if #taken >= want then return end
  local items = redis.call('LRANGE', source, 0, want - #taken - 1)
  if #items == 0 then return end
  redis.call('LTRIM', source, #items, -1)
  for i = 1, #items do taken[#taken + 1] = items[i] end
end
for i = 3, #KEYS do take(KEYS[i]) end
take(KEYS[1])
for i = 1, #taken, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(taken, i, math.min(i + 999, #taken)))
end
return taken
"""


def _queue_take(r, processing: str, count: int) -> list[bytes]:
    keys = [EVENT_QUEUE, processing]
    if not is_cluster(r):
        keys.append(LEGACY_EVENT_QUEUE)
    return r.register_script(_TAKE_SCRIPT)(keys=keys, args=[count])


def _legacy_processing_adopt(r, processing: str) -> list[bytes]:
    """A batch a run of the previous version left in this lane's processing list under its
    old name (single server only): renamed to the current name, under the lane's lock (the
    lock names did not change), and returned to be processed first."""
    if is_cluster(r):
        return []
    legacy = _legacy_name(processing)
    if not r.exists(legacy):
        return []
    r.rename(legacy, processing)
    return cast(list[bytes], r.lrange(processing, 0, -1))


def ingest_lanes() -> list[tuple[str, str]]:
    """(processing list, lock) of each ingestion lane (MOSAIC_INGEST_LANES of them).

    Lanes let several stage-1 runs write batches at once, each with its own processing list for
    crash recovery. Lane 0 keeps the names a single-lane version used.
    """
    lanes = [(EVENT_PROCESSING, INGEST_LOCK)]
    for lane in range(1, settings.MOSAIC_INGEST_LANES):
        lanes.append((f"{EVENT_PROCESSING}:{lane}", f"{INGEST_LOCK}:{lane}"))
    return lanes


def events_queue_length() -> int:
    r = get_redis()
    names = [EVENT_QUEUE, *(processing for processing, _ in ingest_lanes())]
    if not is_cluster(r):  # events queued under the names before the hash tag (upgrade)
        names += [LEGACY_EVENT_QUEUE, *(_legacy_name(name) for name in names[1:])]
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
    return sum(int(n) for n in pipe.execute())


def _legacy_name(processing: str) -> str:
    return LEGACY_EVENT_PROCESSING + processing.removeprefix(EVENT_PROCESSING)


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
        raw = raw or _legacy_processing_adopt(r, processing)
        if not raw:
            raw = _queue_take(r, processing, max_events)
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
        lock = _LeasedLock(r, lock_name)
        if lock.acquire():
            return processing, lock
    return None


def lock_lease_seconds() -> int:
    """How long a run's lock outlives the run when its process is killed: short, since the
    running process renews it (issue #13 item 16: a killed run blocked its lane for 60 s)."""
    return max(2, min(settings.MOSAIC_INGEST_LOCK_SECONDS, LOCK_LEASE_SECONDS))


LOCK_LEASE_SECONDS = 10


class _LeasedLock:
    """A Redis lock with a short lease, renewed every third of it by a daemon thread while the
    holder runs: a run may last longer than the lease, and a killed run frees the lock within
    one lease instead of MOSAIC_INGEST_LOCK_SECONDS. Same acquire()/release() as redis's Lock."""

    def __init__(self, r, name: str) -> None:
        self.lease = lock_lease_seconds()
        # thread_local=False: the token must be visible to the renewing thread
        self.lock = r.lock(name, timeout=self.lease, blocking_timeout=0, thread_local=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        if not self.lock.acquire(blocking=False):
            return False
        self._thread = threading.Thread(target=self._renew, daemon=True, name="lock-lease")
        self._thread.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.lock.extend(self.lease, replace_ttl=True)
            except Exception:  # lost (expired meanwhile) or Redis down: the run finishes anyway
                logger.warning("ingestion: could not renew the lock lease of %s", self.lock.name)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.lock.release()


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
                    (row[8] - _EPOCH) // _MICROSECOND,
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
                [_event_copy_line(pk, row, shared) for pk, row in zip(pks, rows, strict=True)]
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


# COPY's text format, written by hand: psycopg's write_row formats each value through its
# adapters, slow per row (docs/benchmarks.md); here the values are strings already, so a row is one
# join. Text is escaped as COPY requires (backslash, tab, newline, carriage return); JSON from
# orjson holds no raw control characters, only backslashes to double.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_COPY_NULL = "\\N"


def _copy_text(value: str) -> str:
    if "\\" in value or not value.isprintable():
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_json(value: Any) -> str:
    return orjson.dumps(value).decode().replace("\\", "\\\\")


def _event_copy_line(pk: int, row: tuple, received_text: str | None = None) -> str:
    event_id, profile_id, type_, name, properties, value, currency, context, occurred, received = (
        row
    )
    value = _COPY_NULL if value is None else value
    return (
        f"{pk}\t{event_id}\t{profile_id}\t{_copy_text(type_)}\t{_copy_text(name)}\t"
        f"{_copy_json(properties)}\t{value}\t{_copy_text(currency)}\t"
        f"{_copy_json(context)}\t{occurred.isoformat()}\t"
        f"{received_text or received.isoformat()}\n"
    )


def _document_bytes(document: dict[str, Any]) -> bytes:
    """JSON of a profile document: orjson, or the standard library for what orjson refuses
    (an undeclared trait may hold an integer beyond 64 bits; the API parses those exactly)."""
    try:
        return orjson.dumps(document)
    except TypeError:
        return json.dumps(document).encode()


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _pending_add(*, rows: list[tuple]) -> None:
    """Mark stored events for aggregation: (event pk, *_PENDING_FIELDS) per event."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(PendingAggregate._meta.db_table)
        columns = ", ".join(("event_id", *_PENDING_FIELDS))
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as c,
        ):
            c.write("".join(map(_pending_copy_line, rows)))
        return
    PendingAggregate.objects.bulk_create(
        [
            PendingAggregate(**dict(zip(("event_id", *_PENDING_FIELDS), row, strict=True)))
            for row in rows
        ],
        batch_size=1000,
    )


def _pending_copy_line(row: tuple) -> str:
    event_pk, profile_id, event_uuid, type_, occurred_us, value, category = row
    category = _COPY_NULL if category is None else _copy_text(category)
    value = _COPY_NULL if value is None else value
    return (
        f"{event_pk}\t{profile_id}\t{event_uuid}\t{_copy_text(type_)}\t"
        f"{occurred_us}\t{value}\t{category}\n"
    )


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
    lock = _LeasedLock(r, AGGREGATE_LOCK)
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


_PENDING_FIELDS = ("profile_id", "event_uuid", "type", "occurred_us", "value", "category")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _pending_claim(*, event_pks: list[int]) -> list[tuple[int, AggEvent]]:
    """Delete these pending rows; returns (profile id, event) of those actually deleted (a
    rebuild may have taken some meanwhile)."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(PendingAggregate._meta.db_table)
        with connection.cursor() as cursor:
            # The UUID as text: str() of psycopg's UUID objects cost more than the rest of a
            # row's decoding.
            returning = ", ".join(f"{f}::text" if f == "event_uuid" else f for f in _PENDING_FIELDS)
            cursor.execute(
                f"DELETE FROM {table} WHERE event_id = ANY(string_to_array(%s, ',')::bigint[])"
                f" RETURNING {returning}",
                [",".join(map(str, event_pks))],
            )
            rows = cursor.fetchall()
    else:
        # SQLite runs one writer at a time: read, then delete what was read.
        query = PendingAggregate.objects.filter(pk__in=event_pks)
        rows = list(query.values_list(*_PENDING_FIELDS))
        query.delete()
    return [
        (profile_id, AggEvent(str(event_uuid), type_, _EPOCH + us * _MICROSECOND, value, category))
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
                [_json_text(rows)],
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


def profiles_get_or_create(*, keys: list[str]) -> dict[str, Profile]:
    found = {p.key: p for p in Profile.objects.filter(key__in=keys)}
    missing = [Profile(key=k) for k in keys if k not in found]
    if missing:
        Profile.objects.bulk_create(missing, ignore_conflicts=True)
        found = {p.key: p for p in Profile.objects.filter(key__in=keys)}
    return found


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


def profiles_refresh(
    *, profile_ids: list[int], profiles: list[Profile] | None = None, now: float | None = None
) -> None:
    """Re-evaluate condition segments for these profiles, then rewrite their cached documents.

    `profiles`, when given, are these profiles as just written (saves re-reading them). `now`
    (epoch seconds, default the wall clock) is the instant time-dependent conditions are
    evaluated at.
    """
    if not profile_ids:
        return
    segment_memberships_refresh(profile_ids=profile_ids, profiles=profiles, now=now)
    profile_cache_write(profile_ids=profile_ids, profiles=profiles)


def _compiled_segments() -> list[tuple[Segment, Any]]:
    return [(s, compile_condition(s.condition or {})) for s in segments_active_condition()]


@dataclass(frozen=True, slots=True)
class _EvaluationPlan:
    """What evaluating these segments needs besides the stored document: the windows they read
    (folded at the evaluation's now), and whether any answer can change with the clock alone."""

    windows: frozenset[str]
    timed: bool

    @classmethod
    def of(cls, segments: list[Segment], compiled: list[Any]) -> _EvaluationPlan:
        windows: set[str] = set()
        for segment in segments:
            windows |= windows_read(condition_fields(segment.condition or {}))
        return cls(frozenset(windows), bool(windows) or any(map(is_time_dependent, compiled)))


def _evaluation_attributes(
    *, profile: Profile, plan: _EvaluationPlan, now: float
) -> dict[str, Any]:
    document = profile_document(profile=profile, segment_keys=[])
    if plan.windows:
        document["windows"] = Windows(profile.aggregates, now)
    return {"profile": document}


def segment_memberships_refresh(
    *, profile_ids: list[int], profiles: list[Profile] | None = None, now: float | None = None
) -> None:
    """Real-time path: bring these profiles' condition-segment memberships up to date.

    Segments whose truth can change with the clock alone ($ago/$ahead, windows) also schedule
    each profile's re-evaluation at the next instant any of them could flip (time_due_schedule).
    """
    compiled = _compiled_segments()
    if not compiled:
        return
    if profiles is None:
        profiles = list(Profile.objects.filter(pk__in=profile_ids))
    plan = _EvaluationPlan.of([s for s, _ in compiled], [m for _, m in compiled])
    memberships = SegmentMembership.objects.filter(segment__in=[s for s, _ in compiled])
    current = set(
        filter_in(memberships, "profile", profile_ids, cast="bigint").values_list(
            "segment_id", "profile_id"
        )
    )
    wanted = set()
    now = time.time() if now is None else now
    due: dict[int, float | None] = {}
    # One clock for the batch (one `now`), its next_change reset per profile.
    with evaluation_clock(now) as clock:
        for profile in profiles:
            attributes = _evaluation_attributes(profile=profile, plan=plan, now=now)
            clock.next_change = None
            for segment, matches in compiled:
                if matches(attributes):
                    wanted.add((segment.pk, profile.pk))
            if plan.timed:
                due[profile.pk] = _next_change(clock.next_change, profile, plan, now)
    _memberships_apply(add=wanted - current, remove=current - wanted)
    if plan.timed:
        time_due_schedule(due=due)


def _next_change(
    condition_change: float | None, profile: Profile, plan: _EvaluationPlan, now: float
) -> float | None:
    if not plan.windows:
        return condition_change
    window_change = windows_next_change(profile.aggregates, now, windows=plan.windows)
    if window_change is None or condition_change is None:
        return condition_change if window_change is None else window_change
    return min(condition_change, window_change)


def time_due_schedule(*, due: dict[int, float | None]) -> None:
    """Record when each profile must be re-evaluated (epoch seconds; None: never by the clock).

    One Redis sorted set, profile id -> instant: the beat task takes the due ones
    (`profiles_refresh_time_due`), so time-driven membership costs nothing per idle profile.
    """
    if not due:
        return
    scheduled = {str(pid): at for pid, at in due.items() if at is not None}
    unscheduled = [str(pid) for pid, at in due.items() if at is None]
    pipe = get_redis().pipeline(transaction=False)
    if scheduled:
        pipe.zadd(TIME_DUE, scheduled)
    if unscheduled:
        pipe.zrem(TIME_DUE, *unscheduled)
    pipe.execute()


@dataclass(frozen=True, slots=True)
class TimeDueResult:
    due: int
    refreshed: int
    skipped_locked: bool = False


def profiles_refresh_time_due(*, max_profiles: int, now: float | None = None) -> TimeDueResult:
    """Re-evaluate the profiles whose time-dependent segments may have flipped by now, and rewrite
    their cached documents (which reschedules each one). Bounded by `max_profiles` a run.

    Holds the aggregation lock (stage 2 rewrites the same documents: without it, a document built
    from aggregates read before a stage-2 run could overwrite that run's newer one).
    """
    r = get_redis()
    now = time.time() if now is None else now
    lock = r.lock(AGGREGATE_LOCK, timeout=settings.MOSAIC_INGEST_LOCK_SECONDS, blocking_timeout=10)
    if not lock.acquire(blocking=True):
        return TimeDueResult(0, 0, skipped_locked=True)
    try:
        raw = r.zrangebyscore(TIME_DUE, "-inf", now, start=0, num=max_profiles)
        if not raw:
            return TimeDueResult(0, 0)
        ids = [int(x) for x in raw]
        profiles = list(filter_in(Profile.objects.all(), "id", ids, cast="bigint"))
        profiles_refresh(profile_ids=[p.pk for p in profiles], profiles=profiles, now=now)
        # Only now, after the refresh succeeded (a failure leaves them due for the retry): the
        # refresh rescheduled each profile that still has a time-dependent segment to a later
        # instant; what is still due now (profiles erased or merged away, or with no such
        # segment any more) is taken off.
        r.register_script(_UNSCHEDULE_DUE)(keys=[TIME_DUE], args=[now, *raw])
        return TimeDueResult(len(ids), len(profiles))
    finally:
        lock.release()


# Removes the given members whose score is still <= ARGV[1] (one round trip, atomic).
_UNSCHEDULE_DUE = """
local now = tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= now then
    redis.call('ZREM', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
"""


def _time_due_earliest(*, due: dict[int, float | None]) -> None:
    """Schedule these instants, keeping an earlier one already scheduled (ZADD LT)."""
    scheduled = {str(pid): at for pid, at in due.items() if at is not None}
    if scheduled:
        get_redis().zadd(TIME_DUE, scheduled, lt=True)


def time_due_forget(*, profile_ids: list[int]) -> None:
    """Drop these profiles from the time-driven schedule (erasure)."""
    if profile_ids:
        get_redis().zrem(TIME_DUE, *map(str, profile_ids))


def _memberships_apply(*, add: set[tuple[int, int]], remove: set[tuple[int, int]]) -> None:
    now = timezone.now()
    if not add and not remove:
        return
    with transaction.atomic():
        # History and triggers (entered/exited) commit with the change itself.
        membership_changes_record(entered=sorted(add), exited=sorted(remove), at=now)
        # One DELETE per segment, not per (segment, profile): bounded by the segment count.
        removals: dict[int, list[int]] = defaultdict(list)
        for segment_id, profile_id in remove:
            removals[segment_id].append(profile_id)
        for segment_id, profile_ids in removals.items():
            members = SegmentMembership.objects.filter(segment_id=segment_id)
            filter_in(members, "profile", profile_ids, cast="bigint").delete()
        SegmentMembership.objects.bulk_create(
            # `since` given once: its default (timezone.now per object) showed in the profile.
            [SegmentMembership(segment_id=s, profile_id=p, since=now) for s, p in add],
            ignore_conflicts=True,
            batch_size=500,
        )
        segments_member_count_refresh(segment_ids={s for s, _ in add | remove})


def segments_member_count_refresh(*, segment_ids: set[int] | list[int]) -> None:
    """Store each segment's membership count (one counting query for all of them)."""
    for segment in Segment.objects.filter(pk__in=segment_ids).annotate(n=Count("memberships")):
        segment.member_count = segment.n
        segment.save(update_fields=["member_count"])


@dataclass(frozen=True, slots=True)
class RecomputeResult:
    segment_key: str
    evaluated: int
    members: int
    added: int
    removed: int


def segment_recompute(*, segment_id: int) -> RecomputeResult:
    """Run the segment now (segments.runs.segment_run: any kind, atomic swap, run record)."""
    from .runs import segment_run

    run = segment_run(segment_id=segment_id, trigger="recompute")
    if run is None:
        raise RuntimeError(f"segment {segment_id} is being run by another process")
    if run.status != "succeeded":
        raise RuntimeError(f"segment {segment_id}: run {run.pk} {run.status}: {run.errors}")
    return RecomputeResult(run.segment.key, run.profiles_scanned, run.size, run.entered, run.exited)


def profile_cache_write(*, profile_ids: list[int], profiles: list[Profile] | None = None) -> int:
    """Write the profile documents the decision path reads (one Redis key per visitor)."""
    if profiles is None:
        profiles = list(Profile.objects.filter(pk__in=profile_ids))
    segment_keys = profile_segment_keys(profile_ids=[p.pk for p in profiles])
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
