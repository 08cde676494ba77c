"""RFM: quintile scoring (pure), the named segments, scores on profiles, RFM segments, CDNOW."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.pseudonym import pseudonymize
from identity.importers import read_cdnow
from profiles.models import Profile
from profiles.selectors import profile_get_cached
from segments import rfm, runs
from segments.engine.rfm import GRID, SEGMENTS, quintile_scores, rfm_score, segment_of
from segments.kinds import ConfigError, get_kind
from segments.models import Segment, SegmentKpi, SegmentMembership
from segments.tasks import rfm_refresh, segments_kpis_refresh
from tests.conftest import wait_for
from tests.factories import event, store

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def test_quintile_scores__distinct_values__twenty_percent_each_in_value_order():
    # Given 100 distinct values in shuffled order
    values = np.random.default_rng(1).permutation(100)
    # When scored
    scores = quintile_scores(values)
    # Then each score holds 20 of them, higher values higher scores
    assert Counter(scores.tolist()) == {1: 20, 2: 20, 3: 20, 4: 20, 5: 20}
    assert all(scores[values == v][0] == 1 + v // 20 for v in range(100))


@given(st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=60), st.randoms())
def test_quintile_scores__ties_and_any_order__equal_values_equal_scores_order_free(values, rnd):
    # Given values with many ties, in two different orders
    shuffled = values[:]
    rnd.shuffle(shuffled)
    first = dict(zip(values, quintile_scores(np.array(values)).tolist(), strict=True))
    second = dict(zip(shuffled, quintile_scores(np.array(shuffled)).tolist(), strict=True))
    # Then a value gets the same score whatever the order, scores 1-5, monotone in the value
    assert first == second
    assert set(first.values()) <= {1, 2, 3, 4, 5}
    ordered = [first[v] for v in sorted(first)]
    assert ordered == sorted(ordered)


def test_rfm_grid__every_cell_named__all_eleven_segments_used():
    assert {segment_of(r, f) for r in range(1, 6) for f in range(1, 6)} == dict(SEGMENTS).keys()
    assert len(GRID) == 5
    assert segment_of(5, 5) == "champions"
    assert segment_of(1, 1) == "lost"
    assert segment_of(1, 5) == "cant_lose_them"


def test_rfm_score__recent_frequent_big__champion_and_opposite_lost():
    # Given ten customers from best (1 day, 10 orders, $1000) to worst
    recency = np.arange(1, 11) * 30
    frequency = np.arange(10, 0, -1)
    monetary = np.arange(10, 0, -1) * 100.0
    scores = rfm_score(recency, frequency, monetary)
    assert (scores.r[0], scores.f[0], scores.m[0], scores.segments[0]) == (5, 5, 5, "champions")
    assert (scores.r[-1], scores.f[-1], scores.m[-1], scores.segments[-1]) == (1, 1, 1, "lost")


def _tie_group_size_at(ordered: np.ndarray, position: int) -> int:
    """Size of the tie group holding sorted position `position` (0 outside the array)."""
    if not 0 <= position < len(ordered):
        return 0
    value = ordered[position]
    return int(np.searchsorted(ordered, value, "right") - np.searchsorted(ordered, value, "left"))


def test_rfm_score__cdnow_file__each_score_a_quintile_where_ties_allow(shared_dir):
    # Given every CDNOW customer's recency, frequency and spend over the whole file
    path = shared_dir / "data" / "cdnow" / "CDNOW_master.txt"
    as_of = datetime(1998, 7, 1, tzinfo=UTC)
    last: dict[str, datetime] = {}
    orders: Counter[str] = Counter()
    spend: defaultdict[str, float] = defaultdict(float)
    for row in read_cdnow(path):
        customer, at = row["visitor"], datetime.fromisoformat(row["occurred_at"])
        last[customer] = max(last.get(customer, at), at)
        orders[customer] += 1
        spend[customer] += float(row["value"])
    customers = sorted(last)
    recency = np.array([(as_of - last[c]).days for c in customers])
    frequency = np.array([orders[c] for c in customers])
    monetary = np.array([spend[c] for c in customers])
    assert len(customers) == 23570
    # When scored
    scores = rfm_score(recency, frequency, monetary)
    # Then each score holds 20 % +- 2 % of the customers, except by as much as a tie group at
    # one of its quintile boundaries forces (tied customers always share their score)
    n = len(customers)
    for name, values, got in (
        ("R", -recency, scores.r),
        ("F", frequency, scores.f),
        ("M", monetary, scores.m),
    ):
        ordered = np.sort(values)
        counts = Counter(got.tolist())
        for score in range(1, 6):
            excess = abs(counts[score] - n / 5) - 0.02 * n
            if excess > 0:
                ties = max(
                    _tie_group_size_at(ordered, (score - 1) * n // 5),
                    _tie_group_size_at(ordered, score * n // 5),
                )
                assert ties >= excess, (name, score, counts[score], ties)
        for value in np.unique(values)[:200]:
            assert len(set(got[values == value].tolist())) == 1, (name, value)
    # And on this file recency and spend have no tie group large enough to excuse anything
    for got in (scores.r, scores.m):
        assert all(abs(c / n - 0.2) <= 0.02 for c in Counter(got.tolist()).values())
    # While half the customers bought once: all of them F = 1, none F = 2
    assert Counter(scores.f.tolist())[1] / n > 0.4
    assert Counter(scores.f.tolist())[2] == 0


def _customer(visitor: str, days_ago: list[int], value: str = "10.00") -> list[dict]:
    return [
        event(visitor, "purchase", value=value, occurred_at=(AS_OF - timedelta(days=d)).isoformat())
        for d in days_ago
    ]


@pytest.fixture
def rfm_customers(db):
    """Ten customers, c0 the best (recent, frequent, big) to c9 the worst; one out of window."""
    events = []
    for i in range(10):
        events += _customer(f"c{i}", [1 + 30 * i] * (10 - i), value=str(100 - 10 * i))
    events += _customer("old", [800])
    store(events=events)


@pytest.mark.django_db
def test_rfm_scores_refresh__customers__scores_on_profile_and_in_document(rfm_customers):
    # When the base is scored over a 365-day window
    result = rfm.rfm_scores_refresh(as_of=AS_OF, window_days=365)
    # Then the ten in-window customers are scored, the old one is not
    assert result.customers == 10
    best = Profile.objects.get(key=pseudonymize("c0"))
    assert best.scores["rfm"]["segment"] == "champions"
    assert (best.scores["rfm"]["r"], best.scores["rfm"]["f"], best.scores["rfm"]["m"]) == (5, 5, 5)
    assert best.scores["rfm"]["frequency"] == 10
    # And the cached document exposes it to conditions as profile.rfm
    assert profile_get_cached(profile_key=best.key)["rfm"]["segment"] == "champions"
    assert sum(row["customers"] for row in result.segments.values()) == 10
    # When scored again with nothing new, nothing is written
    again = rfm.rfm_scores_refresh(as_of=AS_OF, window_days=365)
    assert (again.written, again.cleared) == (0, 0)
    # When the window shrinks to 100 days, customers beyond it lose their scores
    narrow = rfm.rfm_scores_refresh(as_of=AS_OF, window_days=100)
    assert narrow.customers == 4
    assert narrow.cleared == 6
    assert Profile.objects.filter(scores__has_key="rfm").count() == 4


@pytest.mark.django_db
def test_rfm_segment__champions_and_condition_on_rfm__members(rfm_customers):
    # Given scores, an RFM segment of champions and a condition segment on profile.rfm.r
    rfm.rfm_scores_refresh(as_of=AS_OF, window_days=365)
    champions = Segment.objects.create(
        key="champions", name="Champions", kind="rfm", config={"segments": ["champions"]}
    )
    recent = Segment.objects.create(
        key="recent", name="Recent", condition={"profile.rfm.r": {"$gte": 4}}
    )
    # When both run
    run = runs.segment_run(segment_id=champions.pk)
    runs.segment_run(segment_id=recent.pk)
    # Then the champions are the R=5, F>=4 customers and the condition reads the scores
    expected = {
        p.pk
        for p in Profile.objects.filter(scores__has_key="rfm")
        if p.scores["rfm"]["segment"] == "champions"
    }
    assert expected
    got = set(SegmentMembership.objects.filter(segment=champions).values_list("profile", flat=True))
    assert got == expected
    assert run.size == len(expected)
    assert sum(map(sum, run.metrics["rf_grid"])) == 10
    recent_members = SegmentMembership.objects.filter(segment=recent).count()
    assert recent_members == Profile.objects.filter(scores__rfm__r__gte=4).count() > 0


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "config.segments"),
        ({"segments": []}, "config.segments"),
        ({"segments": ["champions", "kings"]}, "config.segments[1]"),
        ({"segments": ["lost"], "window": 3}, "config.window"),
        ({"segments": "lost"}, "config.segments"),
    ],
)
def test_rfm_kind_config__bad__error_names_the_field(config, field):
    with pytest.raises(ConfigError) as raised:
        get_kind("rfm").clean_config(config)
    assert raised.value.field == field


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_rfm_refresh_and_kpis_tasks__real_worker__scores_segment_and_kpis_written(celery_worker):
    # Given customers who bought in the last days, and an RFM segment
    now = datetime.now(UTC)
    store(
        events=[
            event(f"w{i}", "purchase", value="5", occurred_at=(now - timedelta(days=i)).isoformat())
            for i in range(10)
        ]
    )
    segment = Segment.objects.create(
        key="top", name="Top", kind="rfm", config={"segments": ["new_customers", "champions"]}
    )
    # When beat's task runs in the worker
    rfm_refresh.delay()
    # Then every customer is scored and the segment's run has completed
    wait_for(
        lambda: (
            Profile.objects.filter(scores__has_key="rfm").count() == 10
            and segment.runs.filter(status="succeeded").exists()
        ),
        timeout=60,
        message=celery_worker.output(),
    )
    assert segment.runs.get().size == SegmentMembership.objects.filter(segment=segment).count()
    # And beat's KPI task, in the same worker, writes today's and yesterday's figures
    segments_kpis_refresh.delay()
    wait_for(
        lambda: SegmentKpi.objects.filter(segment=segment).count() == 2,
        timeout=60,
        message=celery_worker.output(),
    )
    today = SegmentKpi.objects.filter(segment=segment).order_by("-day").first()
    assert today.size == segment.runs.get().size
