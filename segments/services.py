"""Writes of segments' real-time side: condition memberships re-evaluated when profiles change
(registered in profiles.hooks by SegmentsConfig.ready), the time-driven schedule of profiles
whose time-dependent segments may flip, member counts, and a segment's recompute."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from core.redis import get_redis, key
from core.sqlin import filter_in
from ingestion.queue import AGGREGATE_LOCK
from profiles.models import Profile
from profiles.selectors import (
    profile_document,
)
from profiles.services import profiles_refresh
from rules import (
    compile_condition,
    condition_fields,
    evaluation_clock,
    is_time_dependent,
)

from .membership import membership_changes_record
from .models import Segment, SegmentMembership
from .selectors import segments_active_condition
from .windows import Windows, windows_next_change, windows_read

#: Sorted set: profile id -> epoch seconds of the next instant a time-dependent segment may flip.
TIME_DUE = key("segments", "time-due")


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
