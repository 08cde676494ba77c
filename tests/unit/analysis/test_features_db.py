"""Feature matrices read from the database in chunks equal the pure builder's."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analysis.selectors import events_chunk, feature_matrix_from_db
from profiles.models import Profile
from segments.engine.features import build_feature_matrix, catalogue, profiles_seen_by
from segments.engine.propensity import Target

from .conftest import START

SPECS = catalogue(
    event_types=["purchase", "page_view"],
    windows_days=[30],
    categories=["jazz", "rock"],
    traits={"plan": "categorical"},
)


@pytest.mark.django_db
def test_feature_matrix_from_db__chunks_of_7__equal_one_pass_of_the_engine(
    shop, django_assert_max_num_queries
):
    # Given the shop's events and an instant in the middle of its history
    as_of = START + dt.timedelta(days=120)
    ids = list(Profile.objects.order_by("pk").values_list("pk", flat=True))
    everything = events_chunk(ids, until=START + dt.timedelta(days=400))
    traits = dict(Profile.objects.values_list("pk", "traits"))
    seen = profiles_seen_by(everything, as_of.timestamp())
    expected = build_feature_matrix(everything, seen, as_of.timestamp(), SPECS, traits=traits)
    expected_y = Target("purchase", 30).labels(everything, seen, as_of.timestamp())
    # When reading it from the database 7 profiles at a time (3 queries a chunk, at most)
    chunks = []
    with django_assert_max_num_queries(3 * (len(ids) // 7 + 2)):
        fm, y = feature_matrix_from_db(
            as_of=as_of,
            specs=SPECS,
            target=Target("purchase", 30),
            chunk=7,
            progress=lambda n, c: chunks.append(c),
        )
    # Then the matrix and labels are the same, and progress was reported per chunk
    np.testing.assert_array_equal(fm.profile_ids, expected.profile_ids)
    np.testing.assert_allclose(fm.numeric, expected.numeric)
    assert fm.categorical.tolist() == expected.categorical.tolist()
    np.testing.assert_array_equal(y, expected_y)
    assert chunks[-1] == len(chunks) >= len(ids) // 7
    # And the categories came from the events' properties
    assert 0 < fm.column("affinity.jazz").mean() < 1


@pytest.mark.django_db
def test_events_chunk__contiguous_range_with_a_gap__only_the_given_profiles_events(shop):
    # Given three consecutive profiles of the shop, the middle one left out of the ids
    a, b, c = Profile.objects.order_by("pk").values_list("pk", flat=True)[:3]
    until = START + dt.timedelta(days=400)
    # When reading them as a primary-key range (the whole-table chunks' path)
    ranged = events_chunk([a, c], until=until, contiguous=True)
    by_ids = events_chunk([a, c], until=until)
    # Then the middle profile's events (read by the range) are dropped: same rows as by ids
    assert set(ranged.profile.tolist()) == {a, c}
    order_r = np.lexsort((ranged.type, ranged.occurred_at, ranged.profile))
    order_i = np.lexsort((by_ids.type, by_ids.occurred_at, by_ids.profile))
    np.testing.assert_array_equal(ranged.profile[order_r], by_ids.profile[order_i])
    np.testing.assert_allclose(ranged.occurred_at[order_r], by_ids.occurred_at[order_i])
    assert ranged.category[order_r].tolist() == by_ids.category[order_i].tolist()
    assert b not in ranged.profile


@pytest.mark.django_db
def test_events_chunk__without_name_and_category__blank_columns_and_nan_for_no_value(shop):
    # Given the shop's profiles (purchases with a value and a category, page views without)
    ids = list(Profile.objects.order_by("pk").values_list("pk", flat=True)[:20])
    until = START + dt.timedelta(days=400)
    # When reading without the name and category columns
    lean = events_chunk(ids, until=until, with_name=False, with_category=False)
    full = events_chunk(ids, until=until)
    # Then the rows are the same, name and category are blank, a missing value is NaN
    assert len(lean) == len(full) > 0
    assert set(lean.category.tolist()) == {""}
    assert set(lean.name.tolist()) == {""}
    assert {"jazz", "rock"} <= set(full.category.tolist())
    views = lean.type == "page_view"
    assert np.isnan(lean.value[views]).all()
    assert not np.isnan(lean.value[~views]).any()


@pytest.mark.django_db
def test_feature_matrix_from_db__rfm_only__equals_the_engine_on_all_columns(shop):
    # Given RFM features only (no category, name or trait is read for them)
    specs = catalogue(event_types=["purchase"])
    as_of = START + dt.timedelta(days=150)
    ids = list(Profile.objects.order_by("pk").values_list("pk", flat=True))
    everything = events_chunk(ids, until=as_of)
    expected = build_feature_matrix(
        everything, profiles_seen_by(everything, as_of.timestamp()), as_of.timestamp(), specs
    )
    # When building the matrix from the database in chunks of 50
    fm, _ = feature_matrix_from_db(as_of=as_of, specs=specs, chunk=50)
    # Then it equals the engine's over all the events
    np.testing.assert_array_equal(fm.profile_ids, expected.profile_ids)
    np.testing.assert_allclose(fm.numeric, expected.numeric)
