"""Incremental refresh: visitors whose behaviour changed since training are folded in."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.pseudonym import pseudonymize
from profiles.models import Event
from profiles.selectors import profile_cache_key
from profiles.services import profiles_get_or_create
from recommendations import services
from recommendations.models import TrainingRun, VisitorRecommendation


def _views(visitor, skus):
    key = pseudonymize(visitor)
    profile = profiles_get_or_create(keys=[key])[key]
    Event.objects.bulk_create(
        [
            Event(
                profile=profile,
                type="product_view",
                properties={"sku": s},
                occurred_at=datetime.now(UTC),
            )
            for s in skus
        ]
    )
    return profile


@pytest.mark.django_db
def test_refresh__new_visitor_after_training__gets_a_list_of_their_taste(
    trained_shop, redis_client
):
    # Given a trained shop, and a visitor first seen after training, browsing one taste cluster
    data, run = trained_shop
    cluster = 2
    skus = [f"sku-{i}" for i in range(60) if data.item_cluster[i] == cluster][:6]
    profile = _views("late-comer", skus)
    assert not VisitorRecommendation.objects.filter(profile=profile).exists()
    # When the refresh runs
    result = services.recommendations_refresh()
    # Then the visitor has a list from the active run, mostly of that cluster, in their document
    assert (result.run_id, result.visitors, result.events) == (run.pk, 1, 6)
    row = VisitorRecommendation.objects.get(profile=profile)
    assert row.run_id == run.pk
    top = [data.item_cluster[int(s.split("-")[1])] for s in row.items[:10]]
    assert top.count(cluster) >= 7, row.items
    document = json.loads(redis_client.get(profile_cache_key(profile.key)))
    assert document["recs"]["items"] == row.items
    # and a second refresh has nothing new to do
    assert services.recommendations_refresh().visitors == 0
    assert TrainingRun.objects.get(pk=run.pk).visitors_refreshed == 1


@pytest.mark.django_db
def test_refresh__bounded_batch__goes_on_where_it_stopped(trained_shop):
    # Given three new visitors with 2 events each, and batches of 3 events
    for n in range(3):
        _views(f"new-{n}", ["sku-1", "sku-4"])
    # When refreshing twice with a 3-event bound
    first = services.recommendations_refresh(max_events=3)
    second = services.recommendations_refresh(max_events=3)
    third = services.recommendations_refresh(max_events=3)
    # Then every visitor is covered, none twice beyond the overlap, and the third finds nothing
    assert first.events == 3
    assert second.events == 3
    assert third.events == 0
    keys = [pseudonymize(f"new-{n}") for n in range(3)]
    assert VisitorRecommendation.objects.filter(profile__key__in=keys).count() == 3


@pytest.mark.django_db
def test_refresh__no_active_run__does_nothing(db):
    assert services.recommendations_refresh().run_id is None
