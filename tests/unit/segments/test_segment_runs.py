"""Segment runs: the kinds registry, run records, atomic swaps, history, leases, crashes."""

from __future__ import annotations

import signal

import pytest

from profiles.models import Profile
from profiles.selectors import profile_get_cached
from segments import runs
from segments.kinds import _REGISTRY as KIND_REGISTRY
from segments.kinds import SegmentKindSpec, kind_choices, register
from segments.models import (
    MembershipEvent,
    RunStatus,
    Segment,
    SegmentMembership,
    SegmentMembershipChange,
    SegmentRun,
)
from segments.tasks import segment_run as segment_run_task
from tests.conftest import start_worker, wait_for

PRO = {"profile.traits.plan": "pro"}
FREE = {"profile.traits.plan": "free"}


def make_profiles(plans: list[str]) -> list[Profile]:
    Profile.objects.bulk_create(
        [Profile(key=f"k{i:06d}", traits={"plan": plan}) for i, plan in enumerate(plans)],
        batch_size=1000,
    )
    return list(Profile.objects.order_by("pk"))


def members(segment: Segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)
    )


@pytest.fixture
def exploding_kind():
    """A kind that fails after its first batch: what a crash mid-compute leaves behind."""

    class Exploding(SegmentKindSpec):
        key = "exploding"
        label = "Exploding (test)"

        def compute(self, segment, *, progress):
            progress(1)
            raise RuntimeError("boom after the first batch")

    register(Exploding())
    yield "exploding"
    KIND_REGISTRY.pop("exploding")


def test_kind_choices__registered_kinds__offered_and_only_them():
    # Given the kinds the apps register (segments; analysis for the model kinds of issue #16)
    offered = dict(kind_choices())
    # Then exactly the registered kinds are offered
    assert {"condition", "rfm", "static", "default"} <= offered.keys()
    assert {"cluster", "propensity", "cluster_member"} <= offered.keys()
    assert "no-such-kind" not in offered


@pytest.mark.django_db
def test_segment_run__condition__records_numbers_history_and_documents():
    # Given 3 "pro" and 2 "free" profiles and a segment of pro profiles
    profiles = make_profiles(["pro", "pro", "free", "pro", "free"])
    segment = Segment.objects.create(key="pro", name="Pro", condition=PRO)
    # When it runs
    run = runs.segment_run(segment_id=segment.pk, trigger="test")
    # Then the run record has its numbers
    assert run.status == RunStatus.SUCCEEDED
    assert (run.profiles_scanned, run.entered, run.exited, run.size) == (5, 3, 0, 3)
    assert run.finished_at >= run.started_at
    assert run.duration_ms is not None
    # And the members, the history and the cached documents follow
    pro_ids = {p.pk for p in profiles if p.traits["plan"] == "pro"}
    assert members(segment) == pro_ids
    entered = SegmentMembershipChange.objects.filter(segment=segment, run=run)
    assert {c.profile_id for c in entered if c.event == MembershipEvent.ENTERED} == pro_ids
    assert profile_get_cached(profile_key=profiles[0].key)["segments"] == ["pro"]
    segment.refresh_from_db()
    assert segment.member_count == 3

    # When the condition changes and it runs again
    segment.condition = FREE
    segment.save()
    second = runs.segment_run(segment_id=segment.pk)
    # Then the pro profiles exited (recorded) and the free ones entered
    assert (second.entered, second.exited, second.size) == (2, 3, 2)
    exits = SegmentMembershipChange.objects.filter(run=second, event=MembershipEvent.EXITED)
    assert {c.profile_id for c in exits} == pro_ids
    assert profile_get_cached(profile_key=profiles[0].key)["segments"] == []


@pytest.mark.django_db
def test_segment_run__twice__second_changes_nothing():
    make_profiles(["pro", "free"])
    segment = Segment.objects.create(key="pro", name="Pro", condition=PRO)
    runs.segment_run(segment_id=segment.pk)
    again = runs.segment_run(segment_id=segment.pk)
    assert (again.entered, again.exited, again.size) == (0, 0, 1)
    assert SegmentMembershipChange.objects.filter(run=again).count() == 0


@pytest.mark.django_db
def test_segment_run__kind_fails_mid_run__old_membership_kept_and_run_failed(exploding_kind):
    # Given a segment with two members
    make_profiles(["pro", "pro", "free"])
    segment = Segment.objects.create(key="pro", name="Pro", condition=PRO)
    runs.segment_run(segment_id=segment.pk)
    before = members(segment)
    # When its kind changes to one that fails mid-run
    Segment.objects.filter(pk=segment.pk).update(kind=exploding_kind)
    with pytest.raises(RuntimeError, match="boom"):
        runs.segment_run(segment_id=segment.pk)
    # Then the run is recorded as failed with its error, and the old membership is in force
    failed = SegmentRun.objects.filter(segment=segment).first()
    assert failed.status == RunStatus.FAILED
    assert "boom" in failed.errors[0]
    assert members(segment) == before
    assert len(before) == 2


@pytest.mark.django_db
def test_segment_run__lease_held__skipped(redis_client):
    # Given another process holding the segment's run lease
    make_profiles(["pro"])
    segment = Segment.objects.create(key="pro", name="Pro", condition=PRO)
    redis_client.set(runs.run_lease_key(segment.pk), "someone-else", px=60_000)
    # When a run is asked for, then it is skipped: no run record, no change
    assert runs.segment_run(segment_id=segment.pk) is None
    assert not SegmentRun.objects.exists()
    assert not members(segment)


@pytest.mark.django_db
def test_segment_run__unregistered_kind__failed_run_names_it():
    make_profiles(["pro"])
    segment = Segment.objects.create(key="c", name="C", kind="no-such-kind")
    run = runs.segment_run(segment_id=segment.pk)
    assert run.status == RunStatus.FAILED
    assert "no-such-kind" in run.errors[0]
    assert not members(segment)


@pytest.mark.django_db
def test_segment_run__previous_run_left_running__marked_abandoned():
    make_profiles(["pro"])
    segment = Segment.objects.create(key="pro", name="Pro", condition=PRO)
    dead = SegmentRun.objects.create(segment=segment, kind="condition")
    run = runs.segment_run(segment_id=segment.pk)
    dead.refresh_from_db()
    assert dead.status == RunStatus.ABANDONED
    assert dead.errors
    assert run.status == RunStatus.SUCCEEDED


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_segment_run__worker_sigkilled_mid_run__old_membership_then_next_run_completes(
    redis_url, tmp_path
):
    # Given 3,000 profiles (1,000 pro) and a segment whose members are the pro ones
    profiles = make_profiles(["pro", "free", "free"] * 1000)
    segment = Segment.objects.create(key="plan", name="Plan", condition=PRO)
    runs.segment_run(segment_id=segment.pk)
    pro = members(segment)
    assert len(pro) == 1000
    # And its condition changed to the free ones, run by a worker in small, paced batches
    Segment.objects.filter(pk=segment.pk).update(condition=FREE)
    env = {
        "MOSAIC_SEGMENT_RUN_BATCH": "100",
        "MOSAIC_SEGMENT_RUN_YIELD_SECONDS": "0.05",
        "MOSAIC_SEGMENT_RUN_LEASE_SECONDS": "2",
    }
    first = start_worker(redis_url, tmp_path / "first.log", **env)
    segment_run_task.delay(segment.pk, "test")

    # When the worker is SIGKILLed mid-run (some batches scanned, not all)
    def midway():
        run = SegmentRun.objects.filter(segment=segment, status=RunStatus.RUNNING).first()
        return run if run and run.profiles_scanned >= 500 else None

    killed = wait_for(midway, timeout=60, interval=0.05, message=first.output())
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    killed.refresh_from_db()
    assert killed.profiles_scanned < 3000, "the run finished before the kill: nothing tested"

    # Then the previous membership is in force, whole
    assert members(segment) == pro

    # When a new worker runs it again (after the dead run's lease expired)
    second = start_worker(redis_url, tmp_path / "second.log", **env)
    try:

        def completed():
            segment_run_task.delay(segment.pk, "test")
            later = SegmentRun.objects.filter(segment=segment, pk__gt=killed.pk)
            # The first that succeeded: under load, a run queued by a later poll may also have
            # succeeded by now (with nothing left to change).
            return later.filter(status=RunStatus.SUCCEEDED).order_by("pk").first()

        done = wait_for(completed, timeout=90, interval=1.0, message=second.output())
    finally:
        second.process.terminate()
        second.process.wait(timeout=15)

    # Then it completes: the free profiles are the members, the killed run is marked abandoned
    free = {p.pk for p in profiles if p.traits["plan"] == "free"}
    assert members(segment) == free
    assert (done.entered, done.exited, done.size) == (2000, 1000, 2000)
    killed.refresh_from_db()
    assert killed.status == RunStatus.ABANDONED


@pytest.mark.django_db(transaction=True)
def test_segment_run__concurrent_reader__sees_old_or_new_membership_never_part():
    import threading

    from django.db import connection

    # Given 6,000 profiles and a segment holding the 2,000 pros
    make_profiles(["pro", "free", "free"] * 2000)
    segment = Segment.objects.create(key="plan", name="Plan", condition=PRO)
    runs.segment_run(segment_id=segment.pk)
    # When its condition changes to the 4,000 free ones and it runs, in small batches, while
    # another connection keeps counting its members
    Segment.objects.filter(pk=segment.pk).update(condition=FREE)
    seen: set[int] = set()
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                seen.add(SegmentMembership.objects.filter(segment_id=segment.pk).count())
        finally:
            connection.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        from django.test import override_settings

        with override_settings(MOSAIC_SEGMENT_RUN_BATCH=200):
            runs.segment_run(segment_id=segment.pk)
        seen.add(SegmentMembership.objects.filter(segment_id=segment.pk).count())
    finally:
        done.set()
        thread.join(timeout=30)
    # Then every count it read was the old size or the new one
    assert seen <= {2000, 4000}
    # (and it read both: it was reading while the run went on)
    assert seen == {2000, 4000}


@pytest.mark.django_db
def test_segment_run__previous_run_killed_after_swap__documents_rewritten(redis_client):
    # Given a run that swapped its membership in, then died before rewriting the documents
    profiles = make_profiles(["pro"])
    segment = Segment.objects.create(key="pro", name="Pro", condition=PRO)
    SegmentMembership.objects.create(segment=segment, profile=profiles[0])
    dead = SegmentRun.objects.create(segment=segment, kind="condition", status=RunStatus.APPLIED)
    SegmentMembershipChange.objects.create(
        segment=segment, profile=profiles[0], event=MembershipEvent.ENTERED, run=dead
    )
    assert profile_get_cached(profile_key=profiles[0].key) is None
    # When the next run starts
    runs.segment_run(segment_id=segment.pk)
    # Then the dead run's profiles have their documents, and the run says what happened
    assert profile_get_cached(profile_key=profiles[0].key)["segments"] == ["pro"]
    dead.refresh_from_db()
    assert dead.status == RunStatus.SUCCEEDED
    assert "rewrote the documents" in dead.errors[-1]
