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
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.db import transaction

from core import metrics
from core.logs import warn_limited
from core.redis import get_redis, is_cluster, key, tagged
from profiles.models import Profile

from .models import Experiment, Exposure

logger = logging.getLogger(__name__)

# The exposure buffer is sharded by visitor: the logging script writes a visitor's dedupe keys,
# its sticky-arm hash and the buffer in one call, so on a Redis Cluster they must share a slot.
# Each visitor's keys carry the hash tag of its shard ({exposures:<n>}); one buffer per shard.
EXPOSURE_SHARDS = 16
BUFFER_KEYS = tuple(tagged(f"exposures:{n}", "buffer") for n in range(EXPOSURE_SHARDS))
# The names before the shards (upgrade): a single server may still hold exposures buffered, and
# sticky arms remembered, under them; the flush drains that buffer and sticky_arms() reads both
# hashes (in the same round trip) until the old ones expire (STICKY_TTL_SECONDS).
LEGACY_BUFFER_KEY = key("exposures", "buffer")
FLUSH_LOCK_KEY = key("exposures", "flush-lock")
DEDUPE_TTL_SECONDS = 24 * 3600
# A sticky experiment's assignment outlives weight changes for this long after the last exposure.
STICKY_TTL_SECONDS = 90 * 24 * 3600
FLUSH_LOCK_SECONDS = 120

# KEYS[1] is the buffer, KEYS[2..n+1] the dedupe keys, KEYS[n+2..2n+1] the visitors' sticky
# hashes; ARGV[1] the dedupe TTL, ARGV[2] n, ARGV[3] the sticky TTL, then per exposure its
# payload, experiment key, arm key and sticky flag ("1" or "0").
_LOG_SCRIPT = """
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local sticky_ttl = tonumber(ARGV[3])
local pushed = 0
for i = 1, n do
  local base = 3 + (i - 1) * 4
  if redis.call('SET', KEYS[1 + i], '1', 'NX', 'EX', ttl) then
    redis.call('RPUSH', KEYS[1], ARGV[base + 1])
    pushed = pushed + 1
  end
  if ARGV[base + 4] == '1' then
    redis.call('HSETNX', KEYS[1 + n + i], ARGV[base + 2], ARGV[base + 3])
    redis.call('EXPIRE', KEYS[1 + n + i], sticky_ttl)
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
    sticky: bool = False  # remember the arm for this visitor (sticky experiments)


class _LostCounter:
    """Process-local count of exposures that could not be buffered (visible in the logs)."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> int:
        metrics.incr("mosaic_exposures_lost_total", n)  # summed over processes at /metrics
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


def exposure_shard(profile_key: str) -> int:
    return zlib.crc32(profile_key.encode()) % EXPOSURE_SHARDS


def _shard_tag(profile_key: str) -> str:
    return f"exposures:{exposure_shard(profile_key)}"


def _dedupe_key(record: ExposureRecord) -> str:
    tag = _shard_tag(record.profile_key)
    return tagged(tag, "seen", record.experiment, record.arm, record.profile_key)


def sticky_key(profile_key: str) -> str:
    """The Redis hash of a visitor's sticky arms (experiment key -> arm key); its name holds the
    pseudonymous key, so erasure's key scan finds and deletes it."""
    return tagged(_shard_tag(profile_key), "sticky", profile_key)


def legacy_sticky_key(profile_key: str) -> str:
    return key("experiments", "sticky", profile_key)


def buffer_names(client) -> list[str]:
    """Every exposure buffer: the shards, and on a single server the one from before them."""
    return [*BUFFER_KEYS] if is_cluster(client) else [LEGACY_BUFFER_KEY, *BUFFER_KEYS]


def exposures_buffered_count(client) -> int:
    pipe = client.pipeline(transaction=False)
    for name in buffer_names(client):
        pipe.llen(name)
    return sum(int(n) for n in pipe.execute())


class _StickyMemo:
    """Process-local copy of visitors' sticky arms. A sticky arm never changes once set (HSETNX),
    so a repeat visitor's arms are served from here without the Redis read. Bounded: emptied
    when full (the Redis hash stays the truth)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._arms: dict[tuple[str, str], str] = {}

    def known(self, profile_key: str, experiments) -> dict[str, str] | None:
        arms = {}
        for experiment in experiments:
            arm = self._arms.get((profile_key, experiment))
            if arm is None:
                return None
            arms[experiment] = arm
        return arms

    def remember(self, profile_key: str, arms: dict[str, str]) -> None:
        if len(self._arms) + len(arms) > self.max_entries:
            self._arms.clear()
        for experiment, arm in arms.items():
            self._arms[(profile_key, experiment)] = arm

    def clear(self) -> None:
        self._arms.clear()


sticky_memo = _StickyMemo()


def sticky_arms(*, profile_key: str, experiments=()) -> dict[str, str] | None:
    """The visitor's remembered arms: from this process's memory when it knows the arms of all
    `experiments`, else one Redis round trip; None when Redis fails (the caller then hashes as
    usual, and the failure is logged)."""
    known = sticky_memo.known(profile_key, experiments) if experiments else None
    if known is not None:
        return known
    try:
        client = get_redis()
        if is_cluster(client):
            hashes = [client.hgetall(sticky_key(profile_key))]
        else:  # one round trip for both names (see LEGACY_BUFFER_KEY)
            pipe = client.pipeline(transaction=False)
            pipe.hgetall(sticky_key(profile_key))
            pipe.hgetall(legacy_sticky_key(profile_key))
            hashes = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("experiments: sticky arms unavailable (%s)", exc)
        return None
    # An arm remembered under the old name was set first: it wins (HSETNX semantics).
    arms = {k.decode(): v.decode() for raw in hashes for k, v in raw.items()}
    sticky_memo.remember(profile_key, arms)
    return arms


def _log_script(client: redis.Redis):
    global _script
    if _script is None:
        with _script_lock:
            if _script is None:
                _script = client.register_script(_LOG_SCRIPT)
    return _script


def _count_lost(records: list[ExposureRecord], why: str) -> None:
    total = exposures_lost.add(len(records))
    warn_limited(
        logger,
        "exposures-lost",
        "exposures: %d lost (%s); %d lost in this process so far",
        len(records),
        why,
        total,
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
    # One script call per shard (a decision's records are one visitor's: one call).
    by_shard: dict[int, list[ExposureRecord]] = {}
    for record in records:
        by_shard.setdefault(exposure_shard(record.profile_key), []).append(record)
    try:
        client = get_redis()
        pushed = 0
        for shard, shard_records in by_shard.items():
            keys = [BUFFER_KEYS[shard]]
            args: list[str | int] = [DEDUPE_TTL_SECONDS, len(shard_records), STICKY_TTL_SECONDS]
            for record in shard_records:
                keys.append(_dedupe_key(record))
                args.extend(
                    (
                        json.dumps([record.experiment, record.arm, record.profile_key, moment]),
                        record.experiment,
                        record.arm,
                        "1" if record.sticky else "0",
                    )
                )
            keys.extend(sticky_key(record.profile_key) for record in shard_records)
            pushed += int(_log_script(client)(keys=keys, args=args, client=client))
    except redis.RedisError as exc:
        _count_lost(records, f"{type(exc).__name__}: {exc}")
        return 0
    exposures_recently_logged.remember(records, moment)
    for record in records:
        if record.sticky:
            # Set by HSETNX only if the visitor had none: it had none when decide read it.
            sticky_memo.remember(record.profile_key, {record.experiment: record.arm})
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
    writes nothing new. A lock keeps two flushes from trimming each other's batches. Reads at
    most batch_size * max_batches exposures over all the shards' buffers.
    """
    client = get_redis()
    token = secrets.token_hex(8)
    if not client.set(FLUSH_LOCK_KEY, token, nx=True, ex=FLUSH_LOCK_SECONDS):
        return FlushResult(skipped_locked=True, remaining=exposures_buffered_count(client))
    batches = read = written = duplicates = invalid = 0
    try:
        # Bounded by items, not batches: most of the shards' buffers hold less than a batch.
        budget = batch_size * max_batches
        for name in buffer_names(client):
            while read < budget:
                size = min(batch_size, budget - read)
                raw = client.lrange(name, 0, size - 1)
                if not raw:
                    break
                batch_written, batch_duplicates, batch_invalid = _write_batch(raw)
                client.ltrim(name, len(raw), -1)
                batches += 1
                read += len(raw)
                written += batch_written
                duplicates += batch_duplicates
                invalid += batch_invalid
                if len(raw) < size:
                    break
        remaining = exposures_buffered_count(client)
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
    # Linked now where the visitor already has a profile (most do: events come with the page);
    # the others when a results beat first sees an event of theirs (experiments.results).
    profiles = dict(Profile.objects.filter(key__in={p for _, p in wanted}).values_list("key", "pk"))
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
                profile_id=profiles.get(profile_key),
                arm_key=arm,
                first_exposed_at=datetime.fromtimestamp(at, UTC),
            )
            for (experiment_id, profile_key), (arm, at) in wanted.items()
            if (experiment_id, profile_key) not in existing
        ]
        Exposure.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    return len(new), len(raw) - invalid - len(new), invalid


# Setup and lifecycle services live in their own module; re-exported for callers of services.
from .lifecycle import (  # noqa: E402
    ArmSpec,
    experiment_create,
    experiment_set_status,
    experiment_validate,
)

__all__ = [
    "ArmSpec",
    "ExposureRecord",
    "experiment_create",
    "experiment_set_status",
    "experiment_validate",
    "exposures_flush",
    "exposures_log",
    "sticky_arms",
]
