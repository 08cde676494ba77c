"""Windowed behaviour: hour/day buckets kept by ingestion, folded at evaluation time into
profile.windows.<1d|7d|30d>.<type>.count|sum|category, for segments and for decisions."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.pseudonym import pseudonymize
from personalization.decide import decide
from personalization.snapshot import snapshot_build
from personalization.visitors import visitor_load
from segments import services
from segments.aggregates import (
    BUCKET_CATEGORY_TOP,
    AggEvent,
    aggregates_apply,
    aggregates_from_events,
)
from segments.models import Profile, SegmentMembership
from segments.selectors import profile_get_cached
from segments.windows import windows_fold, windows_next_change, windows_read
from tests.factories import event, ingest, make_placement, make_segment, make_variant

NOW = datetime(2026, 12, 6, 20, 30, tzinfo=UTC)


def _ev(type_: str, at: datetime, value: str | None = None, category: str | None = None):
    return AggEvent(
        str(uuid.uuid4()), type_, at, Decimal(value) if value is not None else None, category
    )


def test_windows__events_at_several_ages__counted_in_the_windows_that_span_them() -> None:
    # Given views 2 hours, 3 days and 20 days ago, and a purchase of 30.10 yesterday
    agg = aggregates_from_events(
        [
            _ev("product_view", NOW - timedelta(hours=2), category="Jazz"),
            _ev("product_view", NOW - timedelta(days=3), category="Jazz"),
            _ev("product_view", NOW - timedelta(days=20), category="Rock"),
            _ev("purchase", NOW - timedelta(hours=20), value="30.10", category="Jazz"),
        ]
    )

    # When folded now
    windows = windows_fold(agg, NOW)

    # Then each window counts what it spans, per type and per category, zeros included
    assert [windows[w]["product_view"]["count"] for w in ("1d", "7d", "30d")] == [1, 2, 3]
    assert windows["7d"]["product_view"]["category"] == {"Jazz": 2}
    assert windows["30d"]["product_view"]["category"] == {"Jazz": 2, "Rock": 1}
    assert windows["1d"]["purchase"] == {"count": 1, "sum": 30.1, "category": {"Jazz": 1}}
    assert windows["30d"]["search"] == {"count": 0, "sum": 0.0, "category": {}}


def test_windows__time_passes_without_events__old_buckets_fall_out() -> None:
    # Given a view 2 hours ago and one 3 days ago
    agg = aggregates_from_events(
        [
            _ev("product_view", NOW - timedelta(hours=2)),
            _ev("product_view", NOW - timedelta(days=3)),
        ]
    )

    # When the same stored aggregates are folded a day, 5 days and 40 days later
    later = [windows_fold(agg, NOW + timedelta(days=d)) for d in (1, 5, 40)]

    # Then the counts follow the clock alone
    assert [w["1d"]["product_view"]["count"] for w in later] == [0, 0, 0]
    assert [w["7d"]["product_view"]["count"] for w in later] == [2, 1, 0]
    assert [w["30d"]["product_view"]["count"] for w in later] == [2, 2, 0]


def test_windows__one_day_window__hour_precise() -> None:
    # Given a view at 19:10 yesterday
    agg = aggregates_from_events([_ev("product_view", datetime(2026, 12, 5, 19, 10, tzinfo=UTC))])

    # When folded at 18:59 and at 19:00 today (23 h 49 min and 23 h 50 min later)
    # Then it is inside "1d" until its hour has been in the window 24 hours
    assert (
        windows_fold(agg, datetime(2026, 12, 6, 18, 59, tzinfo=UTC))["1d"]["product_view"]["count"]
        == 1
    )
    assert (
        windows_fold(agg, datetime(2026, 12, 6, 19, 59, tzinfo=UTC))["1d"]["product_view"]["count"]
        == 0
    )


def test_buckets__sixty_days_of_events__bounded() -> None:
    # Given a visitor active every hour for 60 days, in 200 categories
    events = [
        _ev("product_view", NOW - timedelta(hours=h), category=f"c{h % 200}")
        for h in range(60 * 24)
    ]

    # When the aggregates are built
    agg = aggregates_from_events(events)

    # Then at most 24 hour buckets and 30 day buckets remain, each with bounded categories
    stored = agg["buckets"]
    assert len(stored["hours"]["keys"]) == 24
    assert len(stored["days"]["keys"]) == 30
    for grain in ("hours", "days"):
        flat = stored[grain]["product_view"]["c"]
        per_bucket = Counter(flat[j + 1] for j in range(0, len(flat), 3))
        assert max(per_bucket.values()) <= BUCKET_CATEGORY_TOP
    # And the stored document stays cheap to parse on the decision path (few JSON containers)
    assert json.dumps(stored).count("{") + json.dumps(stored).count("[") < 40


def test_buckets__incremental_batches__equal_rebuild() -> None:
    # Given a history over 40 days applied in time-ordered batches
    events = [
        _ev("add_to_cart", NOW - timedelta(hours=7 * i), value="5.25", category=f"c{i % 3}")
        for i in range(140)
    ]
    ordered = sorted(events, key=lambda e: e.occurred_at)
    incremental = None
    for start in range(0, len(ordered), 17):
        incremental = aggregates_apply(incremental, ordered[start : start + 17])

    # When rebuilt from all events at once
    # Then the buckets agree
    assert incremental["buckets"] == aggregates_from_events(events)["buckets"]


def test_windows_next_change__buckets__earliest_exit() -> None:
    # Given a view 2 hours ago (hour bucket 18:00) and 3 days ago
    agg = aggregates_from_events(
        [
            _ev("product_view", NOW - timedelta(hours=2)),
            _ev("product_view", NOW - timedelta(days=3)),
        ]
    )

    # When asked for the next change of each window read
    # Then "1d" changes when hour 18:00 leaves it, "7d" when the oldest day leaves it
    assert (
        windows_next_change(agg, NOW, {"1d"}) == datetime(2026, 12, 7, 18, tzinfo=UTC).timestamp()
    )
    assert windows_next_change(agg, NOW, {"7d"}) == datetime(2026, 12, 10, tzinfo=UTC).timestamp()
    assert windows_next_change({}, NOW) is None
    assert windows_read({"profile.windows.7d.purchase.count", "profile.traits.x"}) == {"7d"}


@pytest.mark.django_db
def test_segment__three_jazz_views_this_week__joins_then_leaves_with_the_clock() -> None:
    # Given "3+ product views in Jazz this week" and a visitor with 3 such views 6, 5 and 1 days ago
    segment = make_segment(
        "jazz-fans", {"profile.windows.7d.product_view.category.Jazz": {"$gte": 3}}
    )
    now = datetime.now(UTC)
    services.events_enqueue(
        events=[
            event(
                "jo",
                "product_view",
                occurred_at=(now - timedelta(days=d)).isoformat(),
                properties={"category": "Jazz"},
            )
            for d in (6, 5, 1)
        ]
    )

    # When ingested
    ingest(max_events=10)

    # Then the visitor is a member, and is scheduled for when the oldest day leaves the week
    profile = Profile.objects.get(key=pseudonymize("jo"))
    assert SegmentMembership.objects.filter(segment=segment, profile=profile).exists()
    oldest_day = (now - timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)
    due = services.get_redis().zscore(services.TIME_DUE, str(profile.pk))
    assert due == pytest.approx((oldest_day + timedelta(days=7)).timestamp())

    # When that instant has passed (no new event) and the due profiles are re-evaluated
    result = services.profiles_refresh_time_due(max_profiles=100, now=due + 1)

    # Then the visitor left the segment, and its cached document says so
    assert result.refreshed == 1
    assert not SegmentMembership.objects.filter(segment=segment, profile=profile).exists()
    assert profile_get_cached(profile_key=profile.key)["segments"] == []


@pytest.mark.django_db
def test_decide__window_condition__folded_at_the_decisions_now() -> None:
    # Given a variant for visitors who bought in the last 30 days
    placement = make_placement()
    make_variant(placement, "loyal", condition={"profile.windows.30d.purchase.count": {"$gte": 1}})
    now = datetime.now(UTC)
    services.events_enqueue(
        events=[
            event("bo", "purchase", value="12", occurred_at=(now - timedelta(days=2)).isoformat())
        ]
    )
    ingest(max_events=10)
    snapshot = snapshot_build(1)
    visitor, _ = visitor_load(visitor_id="bo")

    # When deciding now and 29 days later (same stored document)
    early = decide(
        snapshot=snapshot, placement_keys=["hero"], visitor=visitor, request_context={}, now=now
    )
    late = decide(
        snapshot=snapshot,
        placement_keys=["hero"],
        visitor=visitor,
        request_context={},
        now=now + timedelta(days=29),
    )

    # Then the purchase counts while it is inside the window, not after
    assert snapshot.reads_windows
    assert early["hero"].variant == "loyal"
    assert late["hero"].variant == "default"


@pytest.mark.django_db
def test_preview__window_condition__matches_like_the_decision(admin_client) -> None:
    # Given a variant for buyers of the last 30 days, and a visitor who bought 2 days ago
    from django.urls import reverse

    placement = make_placement()
    variant = make_variant(
        placement, "loyal", condition={"profile.windows.30d.purchase.count": {"$gte": 1}}
    )
    ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    services.events_enqueue(events=[event("pre", "purchase", value="5", occurred_at=ago)])
    ingest(max_events=10)

    # When the editor previews the variant as that visitor
    url = reverse("mosaic-variant-preview", args=[variant.pk])
    response = admin_client.get(url, {"visitor": "pre", "url": "https://shop/"})

    # Then the condition matches, the decision agrees, and the folded windows are shown
    result = response.context["result"]
    assert result["matches"] is True
    assert result["decision"].variant == "loyal"
    assert '"30d"' in result["attributes_json"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["product_view", "purchase"]), st.integers(0, 40 * 24 * 60)),
        max_size=30,
    ),
    st.integers(0, 10 * 24 * 60),
    st.lists(st.floats(0, 1), min_size=1, max_size=5),
)
def test_windows_next_change__random_history__windows_constant_until_then(events, later, probes):
    # Given a random history (minutes before NOW) and an evaluation some minutes after NOW
    agg = aggregates_from_events(
        [_ev(t, NOW - timedelta(minutes=m), "1.50", "Jazz") for t, m in events]
    )
    now = (NOW + timedelta(minutes=later)).timestamp()

    # When the next change of the windows is computed
    change = windows_next_change(agg, now)
    horizon = change if change is not None else now + 90 * 86400

    # Then every window folds to the same figures until that instant
    expected = windows_fold(agg, now)
    for probe in probes:
        assert windows_fold(agg, now + probe * (horizon - now) * 0.999999) == expected
