"""Time-driven membership: segments whose truth changes with the clock alone (cart abandoners)
update without a new event, through the due-instant schedule, a real beat and a real worker."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from core.pseudonym import pseudonymize
from ingestion import queue as ingestion_queue
from profiles.models import Profile
from profiles.selectors import profile_get_cached
from segments import services
from segments.models import SegmentMembership
from tests.conftest import wait_for
from tests.factories import event, ingest, make_segment

ABANDONERS = {
    "profile.aggregates.last_add_to_cart_at": {"$lte": {"$ago": "10m"}},
    "profile.aggregates.purchased_since_last_add_to_cart": False,
}


def _due(profile: Profile) -> float | None:
    return services.get_redis().zscore(services.TIME_DUE, str(profile.pk))


@pytest.mark.django_db
def test_time_due__cart_added__scheduled_at_its_moment_then_enters_when_due() -> None:
    # Given cart abandoners, and a visitor who added to cart 3 minutes ago
    segment = make_segment("abandoners", ABANDONERS)
    added = datetime.now(UTC) - timedelta(minutes=3)
    ingestion_queue.events_enqueue(
        events=[event("cat", "add_to_cart", value="9.90", occurred_at=added.isoformat())]
    )

    # When ingested
    ingest(max_events=10)

    # Then not a member yet, and scheduled for the moment it becomes one (add + 10 min)
    profile = Profile.objects.get(key=pseudonymize("cat"))
    assert not SegmentMembership.objects.filter(segment=segment, profile=profile).exists()
    moment = (added + timedelta(minutes=10)).timestamp()
    assert _due(profile) == pytest.approx(moment, abs=0.01)

    # When the due task runs just before the moment: nothing is due
    assert services.profiles_refresh_time_due(max_profiles=10, now=moment - 1).due == 0

    # When it runs at the moment (no new event)
    result = services.profiles_refresh_time_due(max_profiles=10, now=moment + 0.01)

    # Then the visitor entered, the cached document says so, and nothing is left to schedule
    assert (result.due, result.refreshed) == (1, 1)
    assert SegmentMembership.objects.filter(segment=segment, profile=profile).exists()
    assert profile_get_cached(profile_key=profile.key)["segments"] == ["abandoners"]
    assert _due(profile) is None


@pytest.mark.django_db
def test_time_due__purchase_after_cart__unscheduled_and_never_enters() -> None:
    # Given cart abandoners, and a visitor who added to cart then bought
    segment = make_segment("abandoners", ABANDONERS)
    now = datetime.now(UTC)
    ingestion_queue.events_enqueue(
        events=[
            event("buyer", "add_to_cart", occurred_at=(now - timedelta(minutes=3)).isoformat()),
            event("buyer", "purchase", occurred_at=(now - timedelta(minutes=2)).isoformat()),
        ]
    )
    ingest(max_events=10)
    profile = Profile.objects.get(key=pseudonymize("buyer"))

    # When the due instant passes and the task re-evaluates
    services.profiles_refresh_time_due(max_profiles=10, now=now.timestamp() + 3600)

    # Then the visitor stays out and is no longer scheduled
    assert not SegmentMembership.objects.filter(segment=segment, profile=profile).exists()
    assert _due(profile) is None


@pytest.mark.django_db
def test_time_due__no_time_dependent_segment__nothing_scheduled() -> None:
    # Given only a segment without time in it
    make_segment("buyers", {"profile.aggregates.purchase_count": {"$gte": 1}})

    # When a visitor's events are ingested
    ingestion_queue.events_enqueue(events=[event("plain", "add_to_cart")])
    ingest(max_events=10)

    # Then the schedule is empty (idle profiles cost nothing)
    assert services.get_redis().zcard(services.TIME_DUE) == 0


@pytest.mark.django_db
def test_time_due__erasure__profile_leaves_the_schedule() -> None:
    # Given a scheduled visitor
    make_segment("abandoners", ABANDONERS)
    ingestion_queue.events_enqueue(events=[event("gone", "add_to_cart")])
    ingest(max_events=10)
    assert services.get_redis().zcard(services.TIME_DUE) == 1

    # When the visitor is erased
    from profiles.privacy import profile_erase

    profile_erase(profile_key=pseudonymize("gone"), actor="test")

    # Then the schedule no longer names its profile
    assert services.get_redis().zcard(services.TIME_DUE) == 0


@pytest.mark.django_db(transaction=True)
def test_time_driven__real_worker_and_beat__abandoner_enters_within_seconds_of_its_moment(
    celery_worker, celery_beat
) -> None:
    # Given a short-fuse abandoner segment (4 s instead of 10 min, same mechanism), a real worker
    # and a real beat running the time-due task every second
    make_segment(
        "quick-abandoners",
        {
            "profile.aggregates.last_add_to_cart_at": {"$lte": {"$ago": "4s"}},
            "profile.aggregates.purchased_since_last_add_to_cart": False,
        },
    )
    added = datetime.now(UTC)
    ingestion_queue.events_enqueue(
        events=[
            event("walker", "add_to_cart", occurred_at=added.isoformat()),
            event("stayer", "add_to_cart", occurred_at=added.isoformat()),
            event("stayer", "purchase", occurred_at=added.isoformat()),
        ]
    )

    # When the events are ingested and nothing else happens
    ingest(max_events=10)
    walker = pseudonymize("walker")
    assert profile_get_cached(profile_key=walker)["segments"] == []

    # Then the walker's cached document (what decisions read) shows the membership soon after
    # its moment, pushed by beat and the worker alone
    wait_for(
        lambda: profile_get_cached(profile_key=walker)["segments"] == ["quick-abandoners"],
        timeout=45,
        message="the abandoner never entered",
    )
    latency = time.time() - (added.timestamp() + 4)
    assert latency < 60
    assert "profiles_refresh_time_due" in celery_worker.output()
    # And the visitor who bought never entered
    assert profile_get_cached(profile_key=pseudonymize("stayer"))["segments"] == []


@pytest.mark.django_db
def test_segment_save__bad_relative_instant__refused_with_its_path() -> None:
    # Given a segment whose $ago has a unit that does not exist
    from django.core.exceptions import ValidationError

    from segments.models import Segment

    segment = Segment(
        key="bad",
        name="bad",
        condition={"profile.aggregates.last_add_to_cart_at": {"$lte": {"$ago": "10x"}}},
    )

    # When validated as the admin and the API do before saving
    with pytest.raises(ValidationError) as caught:
        segment.full_clean()

    # Then the error names the path of the bad duration
    (message,) = caught.value.message_dict["condition"]
    assert message.startswith("$['profile.aggregates.last_add_to_cart_at'].$lte.$ago: ")


@pytest.mark.django_db
def test_time_due__segment_deactivated__profile_taken_off_once_refreshed() -> None:
    # Given a scheduled abandoner-to-be, then the segment is switched off
    segment = make_segment("abandoners", ABANDONERS)
    ingestion_queue.events_enqueue(events=[event("idle", "add_to_cart")])
    ingest(max_events=10)
    segment.is_active = False
    segment.save()

    # When its instant comes and the due task runs
    result = services.profiles_refresh_time_due(max_profiles=10, now=time.time() + 3600)

    # Then it was refreshed once and is no longer scheduled (no endless re-evaluation)
    assert result.refreshed == 1
    assert services.get_redis().zcard(services.TIME_DUE) == 0


@pytest.mark.django_db
def test_time_due__refresh_fails__profile_stays_due_for_the_retry(monkeypatch) -> None:
    # Given a scheduled profile
    make_segment("abandoners", ABANDONERS)
    ingestion_queue.events_enqueue(events=[event("retry", "add_to_cart")])
    ingest(max_events=10)

    # When the refresh fails (the database went away mid-run)
    def broken(**kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(services, "profiles_refresh", broken)
    with pytest.raises(RuntimeError):
        services.profiles_refresh_time_due(max_profiles=10, now=time.time() + 3600)

    # Then the profile is still due, for the task's retry
    assert services.get_redis().zcard(services.TIME_DUE) == 1


@pytest.mark.django_db
def test_segment_recompute__time_segment_added_later__profiles_scheduled() -> None:
    # Given a visitor ingested while no time-dependent segment existed (nothing scheduled)
    make_segment("buyers", {"profile.aggregates.purchase_count": {"$gte": 1}})
    added = datetime.now(UTC) - timedelta(minutes=2)
    ingestion_queue.events_enqueue(
        events=[event("late", "add_to_cart", occurred_at=added.isoformat())]
    )
    ingest(max_events=10)
    assert services.get_redis().zcard(services.TIME_DUE) == 0

    # When a cart-abandoner segment is created and recomputed in bulk
    segment = make_segment("abandoners", ABANDONERS)
    services.segment_recompute(segment_id=segment.pk)

    # Then the visitor is scheduled for its moment
    profile = Profile.objects.get(key=pseudonymize("late"))
    assert _due(profile) == pytest.approx((added + timedelta(minutes=10)).timestamp(), abs=0.01)
