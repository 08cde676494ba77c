"""End to end with a real worker: events -> a propensity segment created and run through the
segment API -> scores and membership in the Redis profile documents -> a decision targets them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from core.pseudonym import pseudonymize
from profiles.models import Profile
from profiles.selectors import profile_get_cached
from segments.models import SegmentRun
from tests.conftest import wait_for
from tests.factories import make_placement, make_variant

from .conftest import shop_create

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def _hero(client, visitor: str) -> str:
    response = client.get("/api/v1/decide", {"placements": "hero", "visitor": visitor})
    assert response.status_code == 200
    return response.json()["placements"]["hero"]["variant"]


@pytest.mark.django_db(transaction=True)
def test_propensity_segment__api_run_by_worker__scores_in_redis_and_decide_targets(
    staff_client, celery_worker, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Given 200 days of purchases up to today, and a hero variant for likely buyers and one for
    # a high score read straight from the profile document
    now = dt.datetime.now(dt.UTC)
    shop_create(n=400, days=200, start=now - dt.timedelta(days=200))
    placement = make_placement("hero")
    make_variant(
        placement,
        "likely-buyers",
        condition={"profile.segments": {"$in": ["buy-soon"]}},
        priority=10,
    )
    make_variant(
        placement, "sure-buyers", condition={"profile.scores.buy-soon": {"$gte": 0.99}}, priority=5
    )
    # When an analyst creates a propensity segment and asks for a run through the API
    created = staff_client.post(
        "/api/v1/segments",
        json.dumps(
            {
                "key": "buy-soon",
                "name": "Buys in 30 days",
                "kind": "propensity",
                "config": {
                    "target": {"event_type": "purchase", "window_days": 30},
                    "model": "logistic_regression",
                    "membership": {"top_share": 0.3},
                },
            }
        ),
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    queued = staff_client.post("/api/v1/segments/buy-soon/runs")
    assert queued.status_code in (200, 201, 202), queued.content
    run = wait_for(
        lambda: SegmentRun.objects.filter(segment__key="buy-soon", status="succeeded").first(),
        timeout=120,
        message=celery_worker.output(),
    )
    # Then the run beat its baseline and the members' documents in Redis carry the segment and
    # their score
    assert run.metrics["activated"], run.metrics
    member = Profile.objects.filter(memberships__segment__key="buy-soon").first()
    document = profile_get_cached(profile_key=member.key)
    assert "buy-soon" in document["segments"]
    assert document["scores"]["buy-soon"] == member.scores["scores"]["buy-soon"]
    # And a decision for a member serves the targeted variant, for a non-member the default
    visitor = next(f"shop:{i}" for i in range(400) if pseudonymize(f"shop:{i}") == member.key)
    assert _hero(staff_client, visitor) in {"likely-buyers", "sure-buyers"}
    outsider = next(
        p
        for p in Profile.objects.exclude(memberships__segment__key="buy-soon")
        if p.scores["scores"]["buy-soon"] < 0.99
    )
    other = next(f"shop:{i}" for i in range(400) if pseudonymize(f"shop:{i}") == outsider.key)
    assert _hero(staff_client, other) == "default"
