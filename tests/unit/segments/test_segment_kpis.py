"""Segment KPIs (daily series) and guardrails (small segments, overloaded placements, overlap,
the default segment)."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from core.pseudonym import pseudonymize
from profiles.models import Profile
from segments import kpis, runs
from segments.guardrails import condition_segment_keys, segment_warnings, segments_overlap
from segments.models import Segment, SegmentKpi, SegmentMembership, SegmentMembershipChange
from tests.factories import event, make_placement, make_variant, store


@pytest.mark.django_db
def test_segment_kpi__members_buying_today__conversion_revenue_aov():
    # Given a segment of 4 pros, two of whom bought today (3 orders, $60), and a free buyer
    now = timezone.now()
    store(
        events=[
            event("a", "purchase", value="10.00"),
            event("a", "purchase", value="20.00"),
            event("b", "purchase", value="30.00"),
            event("z", "purchase", value="99.00"),
            event("a", "purchase", value="7.00", occurred_at=(now - timedelta(days=2)).isoformat()),
        ]
    )
    for visitor in ("a", "b", "c", "d"):
        Profile.objects.update_or_create(
            key=pseudonymize(visitor), defaults={"traits": {"plan": "pro"}}
        )
    segment = Segment.objects.create(
        key="pro", name="Pro", condition={"profile.traits.plan": "pro"}
    )
    runs.segment_run(segment_id=segment.pk)
    # When today's KPIs are computed
    kpi = kpis.segment_kpi_compute(segment=segment, day=now.astimezone(UTC).date())
    # Then size, entries, purchasers, orders, revenue and the ratios follow
    assert (kpi.size, kpi.entered, kpi.exited) == (4, 4, 0)
    assert (kpi.purchasers, kpi.orders, float(kpi.revenue)) == (2, 3, 60.0)
    assert kpi.conversion_rate == 0.5
    assert kpi.revenue_per_member == 15.0
    assert kpi.average_order_value == 20.0
    # And computing again updates the same row
    kpis.segment_kpi_compute(segment=segment, day=now.astimezone(UTC).date())
    assert SegmentKpi.objects.count() == 1


@pytest.mark.django_db
def test_segment_kpi__past_day__size_rebuilt_from_history():
    # Given a segment with 3 members now, one of whom entered today and one who exited today
    Profile.objects.bulk_create([Profile(key=f"p{i}") for i in range(4)])
    ids = list(Profile.objects.order_by("pk").values_list("pk", flat=True))
    segment = Segment.objects.create(key="s", name="S", kind="static")
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, profile_id=pid) for pid in ids[:3]]
    )
    now = timezone.now()
    SegmentMembershipChange.objects.create(
        segment=segment, profile_id=ids[2], event="entered", at=now
    )
    SegmentMembershipChange.objects.create(
        segment=segment, profile_id=ids[3], event="exited", at=now
    )
    # When yesterday's KPIs are computed, Then its size was 3 - 1 + 1
    yesterday = (now - timedelta(days=1)).astimezone(UTC).date()
    kpi = kpis.segment_kpi_compute(segment=segment, day=yesterday)
    assert (kpi.size, kpi.entered, kpi.exited) == (3, 0, 0)
    assert kpi.conversion_rate == 0.0


@pytest.mark.django_db
def test_segments_kpis_refresh__active_segments__today_and_yesterday():
    Segment.objects.create(key="a", name="A", condition={})
    Segment.objects.create(key="b", name="B", condition={}, is_active=False)
    assert kpis.segments_kpis_refresh(days=2) == 2
    assert SegmentKpi.objects.filter(segment__key="a").count() == 2


def test_condition_segment_keys__any_operator__keys_found():
    condition = {
        "$or": [
            {"profile.segments": {"$in": ["a", "b"]}},
            {"profile.segments": {"$elemMatch": {"$eq": "c"}}},
            {"$not": {"profile.segments": "d"}},
            {"profile.traits.x": "not-a-segment"},
        ]
    }
    assert condition_segment_keys(condition) == {"a", "b", "c", "d"}


@pytest.mark.django_db
@override_settings(MOSAIC_SEGMENT_MIN_SIZE=5, MOSAIC_PLACEMENT_MAX_SEGMENTS=15)
def test_segment_warnings__small_and_overloaded_placement__both_reported():
    # Given a computed segment of 2 members and a placement whose variants target 16 segments
    segment = Segment.objects.create(
        key="s0", name="S0", condition={}, member_count=2, computed_at=timezone.now()
    )
    placement = make_placement("hero")
    for i in range(16):
        make_variant(placement, f"v{i}", condition={"profile.segments": {"$in": [f"s{i}"]}})
    # When its warnings are read
    codes = {w["code"]: w["message"] for w in segment_warnings(segment=segment)}
    # Then it is too small and its placement overloaded
    assert "fewer than 5" in codes["too_small"]
    assert "'hero' targets 16 segments" in codes["placement_overloaded"]
    # And with 15 segments targeted, no placement warning
    placement.variants.filter(key="v15").delete()
    assert {w["code"] for w in segment_warnings(segment=segment)} == {"too_small"}


@pytest.mark.django_db
def test_segments_overlap__two_segments__jaccard():
    # Given A = {1,2,3,4} and B = {3,4,5}
    Profile.objects.bulk_create([Profile(key=f"p{i}") for i in range(6)])
    ids = list(Profile.objects.order_by("pk").values_list("pk", flat=True))
    a = Segment.objects.create(key="a", name="A", kind="static", member_count=4)
    b = Segment.objects.create(key="b", name="B", kind="static", member_count=3)
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=a, profile_id=p) for p in ids[0:4]]
        + [SegmentMembership(segment=b, profile_id=p) for p in ids[2:5]]
    )
    overlap = segments_overlap(segments=[a, b])
    # Then they share 2 of the 5 profiles in either: Jaccard 0.4
    assert overlap["matrix"][0][1] == {"intersection": 2, "jaccard": 0.4}
    assert overlap["matrix"][1][0] == {"intersection": 2, "jaccard": 0.4}
    assert overlap["matrix"][0][0]["jaccard"] == 1.0


@pytest.mark.django_db
def test_default_segment__after_others__holds_only_unclaimed_profiles():
    # Given pros (claimed by a segment) and others
    Profile.objects.bulk_create(
        [Profile(key=f"p{i}", traits={"plan": "pro" if i < 2 else "free"}) for i in range(5)]
    )
    pro = Segment.objects.create(key="pro", name="Pro", condition={"profile.traits.plan": "pro"})
    default = Segment.objects.create(key="unclassified", name="Unclassified", kind="default")
    # When the segments run (the default one last)
    runs.segment_run(segment_id=pro.pk)
    run = runs.segment_run(segment_id=default.pk)
    # Then the default segment holds the three profiles no other segment claims
    members = set(
        SegmentMembership.objects.filter(segment=default).values_list("profile__key", flat=True)
    )
    assert members == {"p2", "p3", "p4"}
    assert run.size == 3


@pytest.mark.django_db
def test_segment_admin_form__bad_rfm_config_or_condition_on_static__errors_on_the_field(
    admin_client,
):
    # Given the admin's add form posted with an unknown RFM segment, then a static segment
    # with a condition
    base = {"name": "X", "key": "x", "description": "", "is_active": "on", "condition": "{}"}
    management = {
        "triggers-TOTAL_FORMS": "0",
        "triggers-INITIAL_FORMS": "0",
        "triggers-MIN_NUM_FORMS": "0",
        "triggers-MAX_NUM_FORMS": "1000",
    }
    url = "/admin/segments/segment/add/"
    bad_rfm = admin_client.post(
        url, {**base, **management, "kind": "rfm", "config": '{"segments": ["kings"]}'}
    )
    bad_static = admin_client.post(
        url,
        {**base, **management, "kind": "static", "config": "{}", "condition": '{"a": 1}'},
    )
    # Then each is refused on its field, naming the offending path, and nothing is stored
    assert "config.segments[0]" in str(bad_rfm.context["adminform"].form.errors["config"])
    assert "condition" in bad_static.context["adminform"].form.errors
    assert not Segment.objects.filter(key="x").exists()
    # And the kinds offered are the registered ones only
    choices = dict(bad_rfm.context["adminform"].form.fields["kind"].choices)
    assert "no-such-kind" not in choices
    assert "rfm" in choices
