"""Segment runs: recompute one segment with its kind, swap the membership in atomically.

A run:
1. takes the segment's lease in Redis (one run per segment at a time; a second request while
   one runs is skipped, which makes the task idempotent). The lease expires unless renewed after
   every batch, so a worker killed mid-run blocks the segment only until it expires;
2. marks what earlier runs left behind: RUNNING ones were killed (ABANDONED: their membership was
   never written); APPLIED ones were killed after their swap, before rewriting the cached
   documents: this run rewrites them;
3. asks the kind for the member set, in bounded batches, recording progress;
4. swaps: in ONE transaction, deletes the exits, inserts the entries, records the history and
   the run's numbers. Readers (the API, the admin, the documents) see the old membership or the
   new one, never part of a run; a process killed before the commit leaves the old one in force;
5. rewrites the Redis profile documents of the profiles that changed, in batches, then marks
   the run SUCCEEDED.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.redis import get_redis, key
from core.sqlin import filter_in
from profiles.models import Profile

from .kinds import get_kind
from .membership import membership_changes_record
from .models import RunStatus, Segment, SegmentMembership, SegmentRun

logger = logging.getLogger(__name__)

_CHUNK = 1000


class LeaseLost(RuntimeError):
    """The run's lease expired (it stalled longer than the lease): another run may own it."""


# Renew only a lease this run still owns (compare-and-expire, one round trip).
_RENEW = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then"
    " return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then"
    " return redis.call('DEL', KEYS[1]) else return 0 end"
)


def run_lease_key(segment_id: int) -> str:
    return key("segments", "run-lease", str(segment_id))


class _Lease:
    def __init__(self, segment_id: int) -> None:
        self.name = run_lease_key(segment_id)
        self.token = uuid.uuid4().hex
        self.ms = int(settings.MOSAIC_SEGMENT_RUN_LEASE_SECONDS * 1000)
        self.redis = get_redis()

    def acquire(self) -> bool:
        return bool(self.redis.set(self.name, self.token, nx=True, px=self.ms))

    def renew(self) -> None:
        if not self.redis.eval(_RENEW, 1, self.name, self.token, self.ms):
            raise LeaseLost(self.name)

    def release(self) -> None:
        self.redis.eval(_RELEASE, 1, self.name, self.token)


def segment_run(*, segment_id: int, trigger: str = "schedule") -> SegmentRun | None:
    """Run the segment now; the run record, or None when another run holds the segment."""
    segment = Segment.objects.get(pk=segment_id)
    lease = _Lease(segment_id)
    if not lease.acquire():
        logger.info("segment_run: segment %s busy, skipped", segment.key)
        return None
    try:
        _runs_left_behind_settle(segment=segment)
        return _run(segment=segment, lease=lease, trigger=trigger)
    finally:
        lease.release()


def _runs_left_behind_settle(*, segment: Segment) -> None:
    """Holding the lease: any run of this segment still marked running or applied is dead."""
    now = timezone.now()
    SegmentRun.objects.filter(segment=segment, status=RunStatus.RUNNING).update(
        status=RunStatus.ABANDONED,
        finished_at=now,
        errors=["The process running it stopped before its swap; its membership was not written."],
    )
    for run in SegmentRun.objects.filter(segment=segment, status=RunStatus.APPLIED):
        changed = list(run.changes.values_list("profile_id", flat=True).distinct())
        _documents_rewrite(profile_ids=changed)
        run.status = RunStatus.SUCCEEDED
        run.finished_at = now
        run.errors = [*run.errors, "Stopped after its swap; a later run rewrote the documents."]
        run.save(update_fields=["status", "finished_at", "errors"])


def _run(*, segment: Segment, lease: _Lease, trigger: str) -> SegmentRun:
    started = time.monotonic()
    run = SegmentRun.objects.create(
        segment=segment, kind=segment.kind, trigger=trigger, profiles_total=Profile.objects.count()
    )
    try:
        kind = get_kind(segment.kind)
    except KeyError:
        return _run_fail(run, started, f"Kind {segment.kind!r} is not available.")
    pause = settings.MOSAIC_SEGMENT_RUN_YIELD_SECONDS

    def progress(scanned: int) -> None:
        lease.renew()
        SegmentRun.objects.filter(pk=run.pk).update(
            profiles_scanned=scanned, heartbeat_at=timezone.now()
        )
        if pause:
            time.sleep(pause)

    try:
        result = kind.compute(segment, progress=progress)
        metrics = {**result.metrics, **kind.metrics_for_members(segment, result.members)}
        entered, exited = _swap(
            segment=segment,
            run=run,
            members=result.members,
            scores=result.scores,
            lease=lease,
            scanned=result.scanned,
            metrics=metrics,
        )
        _documents_rewrite(profile_ids=entered + exited, progress=lease.renew)
    except Exception as exc:
        logger.exception("segment_run: %s failed", segment.key)
        _run_fail(run, started, f"{type(exc).__name__}: {exc}")
        raise
    run.status = RunStatus.SUCCEEDED
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.save(update_fields=["status", "finished_at", "duration_ms"])
    logger.info(
        "segment_run %s: size %s, +%s -%s, %s ms",
        segment.key,
        run.size,
        run.entered,
        run.exited,
        run.duration_ms,
    )
    return run


def _run_fail(run: SegmentRun, started: float, message: str) -> SegmentRun:
    run.status = RunStatus.FAILED
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.errors = [*run.errors, message[:2000]]
    run.save(update_fields=["status", "finished_at", "duration_ms", "errors"])
    return run


def _swap(
    *,
    segment: Segment,
    run: SegmentRun,
    members: set[int],
    scores: dict[int, float] | None,
    lease: _Lease,
    scanned: int,
    metrics: dict,
) -> tuple[list[int], list[int]]:
    """The membership becomes `members`, in one transaction; returns (entered, exited) ids."""
    now = timezone.now()
    with transaction.atomic():
        # Still ours? A run that stalled past its lease must not overwrite a newer run's swap.
        lease.renew()
        current = dict(
            SegmentMembership.objects.select_for_update()
            .filter(segment=segment)
            .values_list("profile_id", "score")
        )
        # A profile deleted since the kind read it (an identify merged it away) gets no
        # membership: inserting one failed the whole run at commit with a foreign-key
        # IntegrityError (issue #13, item 16). Current members need no check (their rows go with
        # their profile). On PostgreSQL a merge committing between this read and the commit can
        # still fail the run: the task retries it (segments.tasks.segment_run).
        candidates = sorted(members - current.keys())
        existing: set[int] = set()
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start : start + _CHUNK]
            existing.update(
                filter_in(Profile.objects.all(), "id", chunk, cast="bigint").values_list(
                    "pk", flat=True
                )
            )
        if len(existing) < len(candidates):
            members = members - (set(candidates) - existing)
        entered = sorted(existing)
        exited = sorted(current.keys() - members)
        for start in range(0, len(exited), _CHUNK):
            filter_in(
                SegmentMembership.objects.filter(segment=segment),
                "profile",
                exited[start : start + _CHUNK],
                cast="bigint",
            ).delete()
        SegmentMembership.objects.bulk_create(
            [
                SegmentMembership(
                    segment=segment,
                    profile_id=pid,
                    since=now,
                    score=scores.get(pid) if scores else None,
                )
                for pid in entered
            ],
            # The real-time path may have inserted one meanwhile (PostgreSQL): same row.
            ignore_conflicts=True,
            batch_size=_CHUNK,
        )
        if scores:
            _scores_update(segment=segment, current=current, scores=scores, members=members)
        membership_changes_record(
            entered=[(segment.pk, p) for p in entered],
            exited=[(segment.pk, p) for p in exited],
            at=now,
            run_id=run.pk,
        )
        Segment.objects.filter(pk=segment.pk).update(member_count=len(members), computed_at=now)
        run.status = RunStatus.APPLIED
        run.profiles_scanned = scanned
        run.entered, run.exited, run.size = len(entered), len(exited), len(members)
        run.metrics = metrics
        run.heartbeat_at = now
        run.save(
            update_fields=[
                "status",
                "profiles_scanned",
                "entered",
                "exited",
                "size",
                "metrics",
                "heartbeat_at",
            ]
        )
    return entered, exited


def _scores_update(*, segment, current, scores, members) -> None:
    staying = [pid for pid in members if pid in current and current[pid] != scores.get(pid)]
    by_score: dict[float | None, list[int]] = defaultdict(list)
    for pid in staying:
        by_score[scores.get(pid)].append(pid)
    for value, pids in by_score.items():
        for start in range(0, len(pids), _CHUNK):
            SegmentMembership.objects.filter(
                segment=segment, profile_id__in=pids[start : start + _CHUNK]
            ).update(score=value)


def _documents_rewrite(*, profile_ids: list[int], progress=None) -> None:
    """The cached documents of these profiles, in bounded batches (their `segments` changed)."""
    from profiles.services import profile_cache_write

    for start in range(0, len(profile_ids), _CHUNK):
        profile_cache_write(profile_ids=profile_ids[start : start + _CHUNK])
        if progress is not None:
            progress()


def segment_runs_enqueue_all(*, trigger: str = "schedule") -> int:
    """Enqueue a run of every active segment (kinds that run last after the others)."""
    from . import tasks

    segments = list(Segment.objects.filter(is_active=True).order_by("pk"))
    ordered = [s for s in segments if not _runs_last(s)] + [s for s in segments if _runs_last(s)]
    for segment in ordered:
        tasks.segment_run.delay(segment.pk, trigger)
    return len(ordered)


def _runs_last(segment: Segment) -> bool:
    try:
        return get_kind(segment.kind).runs_last
    except KeyError:
        return False
