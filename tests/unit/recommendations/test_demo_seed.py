"""The demo's recommendations: seeded, trained once, different items per persona."""

from __future__ import annotations

import pytest

from recommendations.demo_seed import seed_recommendations
from recommendations.models import RunStatus, TrainingRun

from .conftest import make_recs_placement


@pytest.mark.django_db
def test_seed_recommendations__personas__carousel_differs_and_follows_their_genre(client):
    # Given the demo's recs placement, seeded catalog and behaviour, trained once
    make_recs_placement()
    seed_recommendations(write=lambda _m: None, tuning_seconds=2)
    assert TrainingRun.objects.get().status == RunStatus.ACTIVE

    # When each persona asks for the carousel
    def items(visitor):
        body = client.get("/api/v1/decide", {"placements": "recs", "visitor": visitor}).json()
        return body["placements"]["recs"]

    jazz, loyal, new = items("demo-jazz"), items("demo-loyal"), items("demo-new")
    # Then the jazz fan gets jazz, the rock buyer rock, the newcomer the bestsellers
    from recommendations.models import Item

    genre = {i.sku: i.category for i in Item.objects.all()}
    assert [genre[s] for s in jazz["data"]["recommendations"]["items"]].count("jazz") >= 3
    assert [genre[s] for s in loyal["data"]["recommendations"]["items"]].count("rock") >= 3
    assert new["reason"].endswith("popularity:cold_start")
    assert len({tuple(x["data"]["recommendations"]["items"]) for x in (jazz, loyal, new)}) == 3
    # and a second seed changes nothing (idempotent) and does not train again
    seed_recommendations(write=lambda _m: None, tuning_seconds=2)
    assert TrainingRun.objects.count() == 1
