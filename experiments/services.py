"""Exposures: buffered in Redis on the decide path, written to the database in batches by Celery.

The decide path calls `exposures_log` once per request, after the answer is computed: one Redis
round trip (a Lua script) that, per exposure, sets a dedupe key (SET NX with a TTL) and only when
it was new appends the exposure to a Redis list; exposures this process already buffered in the
last hour skip the call altogether. Nothing there raises: when Redis is unavailable
the exposures are counted in a process-local counter and logged with the running total, so a
loss is visible, never silent. `exposures_flush` (Celery beat, every 10 s) moves the buffer into
`Exposure` rows in bounded, idempotent batches.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.db import transaction

from core.redis import get_redis, key

from .models import Experiment, Exposure

logger = logging.getLogger(__name__)

BUFFER_KEY = key("exposures", "buffer")
FLUSH_LOCK_KEY = key("exposures", "flush-lock")
DEDUPE_TTL_SECONDS = 24 * 3600
FLUSH_LOCK_SECONDS = 120

# KEYS[1] is the buffer, KEYS[i>1] the dedupe keys; ARGV[1] the TTL, ARGV[i>1] the payloads.
_LOG_SCRIPT = """
local ttl = tonumber(ARGV[1])
local pushed = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ttl) then
    redis.call('RPUSH', KEYS[1], ARGV[i])
    pushed = pushed + 1
  end
end
return pushed
"""
_script = None
_script_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ExposureRecord:
    experiment: str  # experiment key
    arm: str  # arm key
    profile_key: str  # pseudonymous visitor key


class _LostCounter:
    """Process-local count of exposures that could not be buffered (visible in the logs)."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> int:
        with self._lock:
            self._value += n
            return self._value

    @property
    def value(self) -> int:
        return self._value


exposures_lost = _LostCounter()


class _RecentlyLogged:
    """Process-local memory of exposures already buffered, so that a visitor's repeat page views
    skip the Redis call (Redis SET NX stays the dedupe across processes). Bounded and expiring."""

    def __init__(self, max_entries: int = 50_000, ttl: float = 3600.0) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._until: dict[ExposureRecord, float] = {}

    def known(self, record: ExposureRecord, now: float) -> bool:
        until = self._until.get(record)
        return until is not None and until > now

    def remember(self, records: list[ExposureRecord], now: float) -> None:
        if len(self._until) + len(records) > self.max_entries:
            self._until.clear()  # crude but bounded; the Redis dedupe still holds
        for record in records:
            self._until[record] = now + self.ttl

    def clear(self) -> None:
        self._until.clear()


exposures_recently_logged = _RecentlyLogged()


def _dedupe_key(record: ExposureRecord) -> str:
    return key("exposures", "seen", record.experiment, record.arm, record.profile_key)


def _log_script(client: redis.Redis):
    global _script
    if _script is None:
        with _script_lock:
            if _script is None:
                _script = client.register_script(_LOG_SCRIPT)
    return _script


def _count_lost(records: list[ExposureRecord], why: str) -> None:
    total = exposures_lost.add(len(records))
    logger.warning(
        "exposures: %d lost (%s); %d lost in this process so far", len(records), why, total
    )


def exposures_log(
    *, records: Iterable[ExposureRecord], redis_available: bool = True, now: float | None = None
) -> int:
    """Buffer new exposures (deduplicated) in one round trip; returns how many were new.

    Never raises: when Redis is known to be down (`redis_available=False`, the profile read
    already failed) or fails now, the exposures are counted as lost and logged.
    """
    moment = time.time() if now is None else now
    records = [r for r in records if not exposures_recently_logged.known(r, moment)]
    if not records:
        return 0
    if not redis_available:
        _count_lost(records, "Redis unavailable")
        return 0
    keys = [BUFFER_KEY]
    args: list[str | int] = [DEDUPE_TTL_SECONDS]
    for record in records:
        keys.append(_dedupe_key(record))
        args.append(json.dumps([record.experiment, record.arm, record.profile_key, moment]))
    try:
        client = get_redis()
        pushed = int(_log_script(client)(keys=keys, args=args, client=client))
    except redis.RedisError as exc:
        _count_lost(records, f"{type(exc).__name__}: {exc}")
        return 0
    exposures_recently_logged.remember(records, moment)
    return pushed


@dataclass(frozen=True, slots=True)
class FlushResult:
    batches: int = 0
    read: int = 0
    written: int = 0
    duplicates: int = 0
    invalid: int = 0
    remaining: int = 0
    skipped_locked: bool = False


def exposures_flush(*, batch_size: int = 1000, max_batches: int = 10) -> FlushResult:
    """Move buffered exposures into `Exposure` rows: bounded, idempotent, never loses a batch.

    A batch is read (LRANGE), written (bulk_create, ignoring rows that already exist) and only
    then removed from the buffer (LTRIM): a crash in between re-reads the batch next time, which
    writes nothing new. A lock keeps two flushes from trimming each other's batches.
    """
    client = get_redis()
    token = secrets.token_hex(8)
    if not client.set(FLUSH_LOCK_KEY, token, nx=True, ex=FLUSH_LOCK_SECONDS):
        return FlushResult(skipped_locked=True, remaining=client.llen(BUFFER_KEY))
    batches = read = written = duplicates = invalid = 0
    try:
        for _ in range(max_batches):
            raw = client.lrange(BUFFER_KEY, 0, batch_size - 1)
            if not raw:
                break
            batch_written, batch_duplicates, batch_invalid = _write_batch(raw)
            client.ltrim(BUFFER_KEY, len(raw), -1)
            batches += 1
            read += len(raw)
            written += batch_written
            duplicates += batch_duplicates
            invalid += batch_invalid
            if len(raw) < batch_size:
                break
        remaining = client.llen(BUFFER_KEY)
    finally:
        if client.get(FLUSH_LOCK_KEY) == token.encode():
            client.delete(FLUSH_LOCK_KEY)
    return FlushResult(batches, read, written, duplicates, invalid, remaining)


def _write_batch(raw: list[bytes]) -> tuple[int, int, int]:
    """(written, duplicates, invalid) for one batch of buffered payloads."""
    earliest: dict[tuple[str, str], tuple[str, float]] = {}
    invalid = 0
    for item in raw:
        try:
            experiment, arm, profile_key, at = json.loads(item)
            at = float(at)
        except (ValueError, TypeError):
            invalid += 1
            continue
        pair = (str(experiment), str(profile_key))
        if pair not in earliest or at < earliest[pair][1]:
            earliest[pair] = (str(arm), at)
    ids = dict(Experiment.objects.filter(key__in={e for e, _ in earliest}).values_list("key", "pk"))
    unknown = sum(1 for e, _ in earliest if e not in ids)
    if unknown:
        logger.warning("exposures: %d dropped for unknown (deleted) experiments", unknown)
    invalid += unknown
    wanted = {(ids[e], p): v for (e, p), v in earliest.items() if e in ids}
    with transaction.atomic():
        existing = set(
            Exposure.objects.filter(
                experiment_id__in={e for e, _ in wanted},
                profile_key__in={p for _, p in wanted},
            ).values_list("experiment_id", "profile_key")
        )
        new = [
            Exposure(
                experiment_id=experiment_id,
                profile_key=profile_key,
                arm_key=arm,
                first_exposed_at=datetime.fromtimestamp(at, UTC),
            )
            for (experiment_id, profile_key), (arm, at) in wanted.items()
            if (experiment_id, profile_key) not in existing
        ]
        Exposure.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return len(new), len(raw) - invalid - len(new), invalid
