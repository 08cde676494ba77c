"""End to end with a real Celery worker: events posted → segment recomputed → decide changes."""

from __future__ import annotations

import json

import pytest

from profiles.models import Event
from tests.conftest import wait_for
from tests.factories import event, ingest, make_placement, make_segment, make_variant

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def _hero(client, visitor: str) -> dict:
    response = client.get("/api/v1/decide", {"placements": "hero", "visitor": visitor})
    assert response.status_code == 200
    return response.json()["placements"]["hero"]


@pytest.mark.django_db(transaction=True)
def test_events_posted__worker_recomputes_segment__decide_serves_targeted(client, celery_worker):
    # Given a hero with a variant for repeat buyers, and a visitor who has not bought yet
    placement = make_placement("hero")
    make_variant(placement, "buyers-hero", condition={"profile.segments": {"$in": ["buyers"]}})
    make_segment("buyers", {"profile.aggregates.purchase_count": {"$gte": 2}})
    assert _hero(client, "fay")["variant"] == "default"

    # When the page posts two purchases and the worker processes them
    batch = {"events": [event("fay", "purchase", value=5), event("fay", "purchase", value=7)]}
    response = client.post("/api/v1/events", json.dumps(batch), content_type="application/json")
    assert response.status_code == 202
    wait_for(lambda: Event.objects.count() == 2, message=celery_worker.output())

    # Then the next decision serves the targeted variant
    hero = wait_for(
        lambda: (h := _hero(client, "fay"))["variant"] == "buyers-hero" and h,
        message=f"decide never changed:\n{celery_worker.output()}",
    )
    assert hero["reason"] == "targeted:buyers-hero"


@pytest.mark.django_db(transaction=True)
def test_segment_recompute_task__real_worker__memberships_written(celery_worker):
    from ingestion import queue as ingestion_queue
    from segments.models import Segment
    from segments.tasks import segment_recompute

    ingestion_queue.events_enqueue(events=[event("gus", "purchase"), event("gus", "purchase")])
    ingest(max_events=10)
    segment = make_segment("buyers", {"profile.aggregates.purchase_count": {"$gte": 2}})
    segment_recompute.delay(segment.pk)
    wait_for(
        lambda: Segment.objects.get(pk=segment.pk).computed_at is not None,
        message=celery_worker.output(),
    )
    assert Segment.objects.get(pk=segment.pk).member_count == 1
