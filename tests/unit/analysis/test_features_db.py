"""Feature matrices read from the database in chunks equal the pure builder's."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analysis.selectors import events_chunk, feature_matrix_from_db
from segments.engine.features import build_feature_matrix, catalogue, profiles_seen_by
from segments.engine.propensity import Target
from segments.models import Profile

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
