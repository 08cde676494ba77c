"""The event queue in Redis: what the API appends to and what stage 1 takes batches from."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any, cast

import orjson
import redis
from django.conf import settings
from django.utils import timezone

from core.errors import unavailable_on_redis_error
from core.pseudonym import pseudonymize
from core.redis import get_redis, is_cluster, key, mget, tagged
from profiles.consent import ANALYTICS, purpose_allowed
from profiles.selectors import profile_cache_key

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
TRIGGER_TTL_MS = 2000
DROPPED_COUNTER_TTL = 60 * 60 * 24 * 90


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
        # orjson: the API enqueues up to 500 events per request. The schema queues the value as
        # text; a Decimal from another caller, not native to orjson, is written as its string.
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


def queue_take(r, processing: str, count: int) -> list[bytes]:
    keys = [EVENT_QUEUE, processing]
    if not is_cluster(r):
        keys.append(LEGACY_EVENT_QUEUE)
    return r.register_script(_TAKE_SCRIPT)(keys=keys, args=[count])


def legacy_processing_adopt(r, processing: str) -> list[bytes]:
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


def lock_lease_seconds() -> int:
    """How long a run's lock outlives the run when its process is killed: short, since the
    running process renews it (issue #13 item 16: a killed run blocked its lane for 60 s)."""
    return max(2, min(settings.MOSAIC_INGEST_LOCK_SECONDS, LOCK_LEASE_SECONDS))


LOCK_LEASE_SECONDS = 10


class LeasedLock:
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
