"""Segments: real-time membership on ingestion, bulk recompute swapped in atomically."""

from __future__ import annotations

import pytest

from core.pseudonym import pseudonymize
from ingestion import queue as ingestion_queue
from profiles.models import Profile
from profiles.selectors import profile_get_cached
from segments import services
from segments.models import SegmentMembership
from tests.factories import event, ingest, make_segment

BUYERS = {"profile.aggregates.purchase_count": {"$gte": 2}}


@pytest.mark.django_db
def test_ingest__profile_meets_condition__joins_segment_in_real_time():
    # Given a segment of repeat buyers
    segment = make_segment("buyers", BUYERS)
    # When a visitor's second purchase is ingested
    ingestion_queue.events_enqueue(
        events=[event("eve", "purchase", value="1"), event("eve", "purchase")]
    )
    ingest(max_events=10)
    # Then the visitor is a member, and the cached profile says so
    profile = Profile.objects.get(key=pseudonymize("eve"))
    assert SegmentMembership.objects.filter(segment=segment, profile=profile).exists()
    assert profile_get_cached(profile_key=profile.key)["segments"] == ["buyers"]
    segment.refresh_from_db()
    assert segment.member_count == 1


@pytest.mark.django_db
def test_segment_recompute__condition_changed__members_swapped():
    # Given profiles with 0, 1 and 3 purchases, and a segment of repeat buyers
    for name, purchases in [("p0", 0), ("p1", 1), ("p3", 3)]:
        ingestion_queue.events_enqueue(
            events=[event(name)] + [event(name, "purchase") for _ in range(purchases)]
        )
    ingest(max_events=100)
    segment = make_segment("buyers", BUYERS)
    first = services.segment_recompute(segment_id=segment.pk)
    assert (first.evaluated, first.members, first.added) == (3, 1, 1)
    # When the condition is widened and recomputed
    segment.condition = {"profile.aggregates.purchase_count": {"$gte": 1}}
    segment.save()
    second = services.segment_recompute(segment_id=segment.pk)
    # Then one member is added, none removed, and counts and caches follow
    assert (second.members, second.added, second.removed) == (2, 1, 0)
    segment.refresh_from_db()
    assert segment.member_count == 2
    p1 = Profile.objects.get(key=pseudonymize("p1"))
    assert profile_get_cached(profile_key=p1.key)["segments"] == ["buyers"]


@pytest.mark.django_db
def test_segment_recompute__twice__changes_nothing():
    ingestion_queue.events_enqueue(events=[event("x", "purchase"), event("x", "purchase")])
    ingest(max_events=10)
    segment = make_segment("buyers", BUYERS)
    services.segment_recompute(segment_id=segment.pk)
    again = services.segment_recompute(segment_id=segment.pk)
    assert (again.added, again.removed, again.members) == (0, 0, 1)


@pytest.mark.django_db
def test_segment_condition__invalid__refused_at_validation():
    from django.core.exceptions import ValidationError

    segment = make_segment("ok", BUYERS)
    segment.condition = {"profile.traits.age": {"$gte": 18, "$bogus": 1}}
    with pytest.raises(ValidationError) as raised:
        segment.full_clean()
    assert "condition" in raised.value.message_dict
    assert "$bogus" in raised.value.message_dict["condition"][0]
