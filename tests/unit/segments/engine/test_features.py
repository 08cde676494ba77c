"""The feature catalogue, the matrix as of an instant (no leakage) and window labels."""

from __future__ import annotations

import numpy as np
import pytest

from segments.engine.features import (
    BASE_FEATURES,
    DAY,
    MISSING_CATEGORY,
    EventRows,
    build_feature_matrix,
    build_labels,
    catalogue,
    fill_missing,
    one_hot,
    spec_for_key,
)

from .conftest import T0


def _events():
    return EventRows.from_records(
        [
            {"profile": 1, "type": "page_view", "occurred_at": T0, "category": "jazz"},
            {
                "profile": 1,
                "type": "purchase",
                "occurred_at": T0 + 2 * DAY,
                "value": 10,
                "category": "jazz",
            },
            {
                "profile": 1,
                "type": "purchase",
                "occurred_at": T0 + 8 * DAY,
                "value": 30,
                "category": "rock",
            },
            {"profile": 2, "type": "page_view", "occurred_at": T0 + 9 * DAY},
            # after the instant used below: must never count
            {"profile": 1, "type": "purchase", "occurred_at": T0 + 11 * DAY, "value": 999},
            {"profile": 3, "type": "purchase", "occurred_at": T0 + 12 * DAY, "value": 5},
        ]
    )


def test_build_feature_matrix__hand_made_history__rfm_tenure_and_counts_right():
    # Given three profiles' events and the instant T0 + 10 days
    specs = catalogue(
        event_types=["page_view", "purchase"], windows_days=[3], categories=["jazz", "rock"]
    )
    # When building the matrix
    fm = build_feature_matrix(_events(), [1, 2, 3], T0 + 10 * DAY, specs)
    # Then profile 1: last event 2 days ago, 2 purchases worth 40, first event 10 days ago
    one = dict(zip(fm.numeric_names, fm.numeric[0], strict=True))
    assert one["recency_days"] == pytest.approx(2)
    assert one["purchase_recency_days"] == pytest.approx(2)
    assert one["frequency"] == 2
    assert one["monetary"] == 40
    assert one["avg_order_value"] == 20
    assert one["tenure_days"] == pytest.approx(10)
    assert one["count.page_view"] == 1
    assert one["window.purchase.3d"] == 1  # only the purchase at day 8 is within 3 days
    assert one["affinity.jazz"] == pytest.approx(2 / 3)
    assert one["affinity.rock"] == pytest.approx(1 / 3)
    # And profile 2 (a visit, never bought) gets the horizon for purchase recency, 0 money
    two = dict(zip(fm.numeric_names, fm.numeric[1], strict=True))
    assert two["recency_days"] == pytest.approx(1)
    assert two["purchase_recency_days"] == pytest.approx(11)  # 10 days of data + 1
    assert two["monetary"] == 0
    assert two["avg_order_value"] == 0


def test_build_feature_matrix__events_after_the_instant__change_nothing():
    # Given the same history with and without the events after the instant
    events = _events()
    before = events.select(events.occurred_at <= T0 + 10 * DAY)
    specs = catalogue(event_types=["page_view", "purchase"], windows_days=[30])
    # When building both matrices as of that instant
    a = build_feature_matrix(events, [1, 2, 3], T0 + 10 * DAY, specs)
    b = build_feature_matrix(before, [1, 2, 3], T0 + 10 * DAY, specs)
    # Then they are identical: the future is never read
    np.testing.assert_array_equal(a.numeric, b.numeric)
    # And profile 3 (only a future purchase) looks like a profile with no events
    three = dict(zip(a.numeric_names, a.numeric[2], strict=True))
    assert three["frequency"] == 0
    assert three["events"] == 0


def test_build_feature_matrix__traits__numeric_median_and_categorical_missing_level():
    # Given declared traits, one absent and one not a number
    specs = catalogue(traits={"age": "numeric", "plan": "categorical"})
    traits = {1: {"age": 30, "plan": "pro"}, 2: {"age": 50}, 3: {"age": "old", "plan": ""}}
    # When building the matrix
    fm = build_feature_matrix(_events(), [1, 2, 3], T0 + 10 * DAY, specs, traits=traits)
    # Then a missing or unparsable number gets the median, a missing category its own level
    assert fm.column("trait.age").tolist() == [30, 50, 40]
    assert fm.column("trait.plan").tolist() == ["pro", MISSING_CATEGORY, MISSING_CATEGORY]


def test_catalogue__every_spec__has_a_kind_and_missing_rule():
    # Given the full catalogue for two types, a window, a category and a trait
    specs = catalogue(
        event_types=["purchase", "search"],
        windows_days=[7],
        categories=["jazz"],
        traits={"plan": "categorical"},
    )
    # Then every spec is typed, has a missing rule, and the keys are unique
    assert {s.kind for s in specs} == {"numeric", "categorical"}
    assert all(s.missing in {"zero", "median", "horizon", "category"} for s in specs)
    assert len({s.key for s in specs}) == len(specs)
    assert specs[: len(BASE_FEATURES)] == list(BASE_FEATURES)


@pytest.mark.parametrize("bad", [{"windows_days": [0]}, {"categories": ["a b<script>"]}])
def test_catalogue__absurd_window_or_category_name__refused(bad):
    # When asking for a zero-day window or a key that is not a plain name
    # Then it is refused instead of producing an unusable column
    with pytest.raises(ValueError, match=r"window|valid name"):
        catalogue(event_types=["purchase"], **bad)


def test_build_labels__window_boundaries__start_excluded_end_included():
    # Given purchases exactly at the cutoff, inside, at the end and after the window
    events = EventRows.from_records(
        [
            {"profile": 1, "type": "purchase", "occurred_at": T0},
            {"profile": 2, "type": "purchase", "occurred_at": T0 + 5 * DAY},
            {"profile": 3, "type": "purchase", "occurred_at": T0 + 10 * DAY},
            {"profile": 4, "type": "purchase", "occurred_at": T0 + 10 * DAY + 1},
            {"profile": 5, "type": "page_view", "occurred_at": T0 + 5 * DAY},
        ]
    )
    # When labelling "purchase in (T0, T0 + 10 days]" and its absence (churn)
    y = build_labels(events, [1, 2, 3, 4, 5], T0, 10, event_type="purchase")
    churn = build_labels(events, [1, 2, 3, 4, 5], T0, 10, event_type="purchase", absence=True)
    # Then only the events inside the half-open window count
    assert y.tolist() == [0, 1, 1, 0, 0]
    assert churn.tolist() == [1, 0, 0, 1, 1]


def test_one_hot__later_matrix__uses_the_first_levels():
    # Given a training matrix with plans pro/free and a later one with an unseen plan
    specs = catalogue(traits={"plan": "categorical"})
    events = _events()
    train = build_feature_matrix(
        events, [1, 2], T0, specs, traits={1: {"plan": "pro"}, 2: {"plan": "free"}}
    )
    later = build_feature_matrix(
        events, [1, 2], T0, specs, traits={1: {"plan": "gold"}, 2: {"plan": "pro"}}
    )
    # When encoding both with the training levels
    _X1, names, levels = one_hot(train)
    X2, names2, _ = one_hot(later, levels)
    # Then the columns line up and the unseen level has no column
    assert names == names2
    assert X2[:, names.index("trait.plan=pro")].tolist() == [0, 1]
    assert X2[:, names.index("trait.plan=free")].tolist() == [0, 0]


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("frequency", "numeric"),
        ("count.search", "numeric"),
        ("window.purchase.90d", "numeric"),
        ("affinity.jazz", "numeric"),
        ("trait.plan", "categorical"),
    ],
)
def test_spec_for_key__known_names__typed_spec(key, kind):
    spec = spec_for_key(key, {"plan": "categorical"})
    assert spec.key == key
    assert spec.kind == kind


@pytest.mark.parametrize(
    "key", ["nope", "window.purchase.0d", "window.purchase.x", "trait.secret", "", "a" * 200]
)
def test_spec_for_key__unknown_or_absurd__refused(key):
    with pytest.raises(ValueError, match=r"feature|window|trait|declared"):
        spec_for_key(key, {"plan": "categorical"})


def test_build_feature_matrix__chunks_filled_at_the_end__equal_the_whole():
    # Given a history split by profile into two chunks, with a numeric trait to fill by median
    events = _events()
    specs = catalogue(event_types=["purchase"], traits={"age": "numeric"})
    traits = {1: {"age": 30}, 2: {}, 3: {"age": 70}}
    whole = build_feature_matrix(events, [1, 2, 3], T0 + 10 * DAY, specs, traits=traits)
    # When each chunk is built unfilled and the concatenation filled once
    parts = [
        build_feature_matrix(events, ids, T0 + 10 * DAY, specs, traits=traits, fill=False)
        for ids in ([1], [2, 3])
    ]
    merged = parts[0]
    merged.numeric = np.vstack([p.numeric for p in parts])
    merged.profile_ids = np.array([1, 2, 3])
    fill_missing(merged, specs, float(events.occurred_at.min()))
    # Then it is the matrix built in one go (population median, population horizon)
    np.testing.assert_array_equal(merged.numeric, whole.numeric)
