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
from ingestion import queue as ingestion_queue
from personalization.decide import decide
from personalization.snapshot import snapshot_build
from personalization.visitors import visitor_load
from profiles.aggregates import (
    BUCKET_CATEGORY_TOP,
    AggEvent,
    aggregates_apply,
    aggregates_from_events,
)
from profiles.models import Profile
from profiles.selectors import profile_get_cached
from rules import compile_condition, evaluation_clock
from segments import services
from segments.models import SegmentMembership
from segments.windows import (
    Windows,
    profile_windowed,
    windows_fold,
    windows_next_change,
    windows_read,
)
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
    ingestion_queue.events_enqueue(
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
    ingestion_queue.events_enqueue(
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
    ingestion_queue.events_enqueue(events=[event("pre", "purchase", value="5", occurred_at=ago)])
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


# --- Compiled window paths (Windows.path_get): same answers as the lazy views ---------------------

_WINDOW_NAMES = ("1d", "7d", "30d", "2d")
_TYPES_READ = ("product_view", "purchase", "add_to_cart", "search", "bogus")
_TAILS = [
    (w, t, *rest)
    for w in _WINDOW_NAMES
    for t in _TYPES_READ
    for rest in (
        ("count",),
        ("sum",),
        ("category", "Jazz"),
        ("category", "Rock"),
        ("category", "Never"),
        ("category",),
        ("count", "length"),
        ("category", "Jazz", "x"),
        ("average",),
    )
] + [("7d", "purchase"), ("1d", "search"), ("7d", "bogus")]


def _plain_walk(value, segments):
    for segment in segments:
        if not isinstance(value, dict):
            return None
        value = value.get(segment)
    return value


def _windowed(agg, now):
    return {"profile": profile_windowed({"aggregates": agg}, now)}


def _folded(agg, now):
    return {"profile": {"aggregates": agg, "windows": windows_fold(agg, now)}}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["product_view", "purchase", "add_to_cart", "search"]),
            st.integers(-10, 45 * 24 * 60),
            st.sampled_from([None, "Jazz", "Rock", "Soul"]),
            st.integers(1, 50000),
        ),
        max_size=40,
    ),
    st.lists(st.integers(-60, 40 * 24 * 60), min_size=1, max_size=4),
)
def test_window_paths__random_histories_and_clocks__compiled_equals_lazy_views(events, laters):
    # Given a random history (minutes before NOW, categories, values in cents)
    agg = aggregates_from_events(
        [_ev(t, NOW - timedelta(minutes=m), str(Decimal(c) / 100), cat) for t, m, cat, c in events]
    )
    conditions = [
        {".".join(("profile.windows", *tail)): op}
        for tail in _TAILS
        for op in ({"$gte": 3}, {"$lt": 1}, {"$exists": True}, {"$gt": 40.5})
    ]
    compiled = [compile_condition(c) for c in conditions]

    # When read at several instants in turn (the cached first key must follow the clock)
    for later in laters:
        now = (NOW + timedelta(minutes=later)).timestamp()
        view, folded = Windows(agg, now), windows_fold(agg, now)

        # Then every path reads the same value from the compiled getter as from the views
        for tail in _TAILS:
            assert view.path_get(tail) == _plain_walk(folded, tail), tail
        # And every compiled condition answers the same on both forms
        fast, reference = _windowed(agg, now), _folded(agg, now)
        for condition, fn in zip(conditions, compiled, strict=True):
            assert fn(fast) == fn(reference), condition


@pytest.mark.parametrize(
    ("window", "event_at", "inside_until"),
    [
        # "1d": the event's hour stays 24 hours
        ("1d", datetime(2026, 12, 5, 19, 10, tzinfo=UTC), datetime(2026, 12, 6, 19, tzinfo=UTC)),
        # "7d": today and the 6 days before (UTC days)
        ("7d", datetime(2026, 12, 1, 0, 0, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)),
        ("7d", datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)),
        # "30d": today and the 29 days before
        ("30d", datetime(2026, 11, 7, 12, 0, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC)),
    ],
)
def test_window_paths__bucket_leaves_the_window__compiled_condition_flips_at_the_boundary(
    window, event_at, inside_until
) -> None:
    # Given one Jazz view and one 12.50 purchase at `event_at`, stored once
    agg = aggregates_from_events(
        [
            _ev("product_view", event_at, category="Jazz"),
            _ev("purchase", event_at, value="12.50", category="Jazz"),
        ]
    )
    views = compile_condition({f"profile.windows.{window}.product_view.count": 1})
    jazz = compile_condition({f"profile.windows.{window}.product_view.category.Jazz": {"$gte": 1}})
    spent = compile_condition({f"profile.windows.{window}.purchase.sum": 12.5})

    # When evaluated just before and exactly at the instant its bucket leaves the window
    before = _windowed(agg, inside_until - timedelta(microseconds=1))
    at = _windowed(agg, inside_until)

    # Then it counts until then and not from then on, with no new event
    assert (views(before), jazz(before), spent(before)) == (True, True, True)
    assert (views(at), jazz(at), spent(at)) == (False, False, False)
    nothing = compile_condition({f"profile.windows.{window}.product_view.count": 0})
    assert nothing(at) is True


def test_window_paths__time_passes_in_one_batch_clock__answers_follow_each_clock() -> None:
    # Given 3 Jazz views 6, 5 and 1 days ago, and "3+ Jazz views this week" compiled once
    agg = aggregates_from_events(
        [_ev("product_view", NOW - timedelta(days=d), category="Jazz") for d in (6, 5, 1)]
    )
    fn = compile_condition({"profile.windows.7d.product_view.category.Jazz": {"$gte": 3}})

    # When evaluated under batch clocks today, tomorrow, and today again
    answers = []
    for moment in (NOW, NOW + timedelta(days=1), NOW):
        with evaluation_clock(moment.timestamp()):
            answers.append(fn(_windowed(agg, moment.timestamp())))

    # Then the oldest view leaves the week tomorrow (and the cached cutoff never goes stale)
    assert answers == [True, False, True]


@pytest.mark.parametrize(
    "aggregates",
    [
        None,
        {},
        {"buckets": None},
        {"buckets": {"days": "x", "hours": []}},
        {"buckets": {"days": {"keys": "2026-12-06"}, "hours": {"keys": []}}},
        {"buckets": {"days": {"keys": ["2026-12-06"], "product_view": [1]}}},
        {"buckets": {"days": {"keys": ["2026-12-06"], "product_view": {"n": [1], "v": [0]}}}},
    ],
)
def test_window_paths__missing_or_malformed_buckets__zero_counts_and_absent_categories(
    aggregates,
) -> None:
    # Given a profile without usable buckets for the Jazz category
    attributes = _windowed(aggregates, NOW.timestamp())
    view = attributes["profile"]["windows"]

    # When window paths are read
    # Then counts are 0 (or the one stored count), sums 0.0, categories absent: "fewer than 3"
    # holds and "at least 1 Jazz view" does not
    assert view.path_get(("7d", "product_view", "count")) in (0, 1)
    assert view.path_get(("30d", "purchase", "sum")) == 0.0
    assert view.path_get(("7d", "product_view", "category", "Jazz")) is None
    assert compile_condition({"profile.windows.7d.product_view.count": {"$lt": 3}})(attributes)
    jazz = compile_condition({"profile.windows.7d.product_view.category.Jazz": {"$gte": 1}})
    assert jazz(attributes) is False
    assert (
        view.path_get(("7d", "product_view", "count"))
        == windows_fold(aggregates, NOW.timestamp())["7d"]["product_view"]["count"]
    )


def test_window_paths__categories__summed_over_the_days_inside_only() -> None:
    # Given Jazz views 8 days ago (outside 7d), 2 days ago (x2), and a Rock view today
    agg = aggregates_from_events(
        [
            _ev("product_view", NOW - timedelta(days=8), category="Jazz"),
            _ev("product_view", NOW - timedelta(days=2), category="Jazz"),
            _ev("product_view", NOW - timedelta(days=2, hours=1), category="Jazz"),
            _ev("product_view", NOW, category="Rock"),
        ]
    )
    view = Windows(agg, NOW)

    # When the category paths are read
    # Then only the days inside each window count, and a category seen only outside is absent
    assert view.path_get(("7d", "product_view", "category", "Jazz")) == 2
    assert view.path_get(("30d", "product_view", "category", "Jazz")) == 3
    assert view.path_get(("7d", "product_view", "category", "Rock")) == 1
    assert view.path_get(("1d", "product_view", "category", "Jazz")) is None
    assert (
        Windows(agg, NOW + timedelta(days=6)).path_get(("7d", "product_view", "category", "Jazz"))
        is None
    )
