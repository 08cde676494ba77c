"""End to end on a Redis Cluster with a real Celery worker: the data on the cluster, Celery's
broker on a single Redis of its own (what MOSAIC_REDIS_CLUSTER requires), both set through the
environment as a deployment sets them."""

from __future__ import annotations

import json
import subprocess

import pytest

from segments.models import Event
from tests.conftest import start_worker, wait_for
from tests.factories import event, make_placement, make_segment, make_variant

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.fixture
def cluster_worker(on_cluster, redis_url, transactional_db, tmp_path):
    worker = start_worker(
        on_cluster.url,
        tmp_path / "worker.log",
        MOSAIC_REDIS_CLUSTER="true",
        CELERY_BROKER_URL=redis_url,  # the single test server: the broker stays apart
    )
    yield worker
    worker.process.terminate()
    try:
        worker.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.process.kill()


@pytest.mark.django_db(transaction=True)
def test_events_posted__worker_on_cluster__decide_serves_targeted(client, cluster_worker):
    # Given a hero with a variant for buyers, and a visitor who has not bought yet
    placement = make_placement("hero")
    make_variant(placement, "buyers-hero", condition={"profile.segments": {"$in": ["buyers"]}})
    make_segment("buyers", {"profile.aggregates.purchase_count": {"$gte": 2}})
    decide = {"placements": "hero", "visitor": "fay"}
    assert client.get("/api/v1/decide", decide).json()["placements"]["hero"]["variant"] == (
        "default"
    )
    # When the page posts two purchases (queued on the cluster, the task sent to the broker)
    batch = {"events": [event("fay", "purchase", value=5), event("fay", "purchase", value=7)]}
    response = client.post("/api/v1/events", json.dumps(batch), content_type="application/json")
    assert response.status_code == 202
    # Then the worker takes them from the cluster's queue and stores them
    wait_for(lambda: Event.objects.count() == 2, message=cluster_worker.output())
    # And the profile document it writes to the cluster reaches decide (through the profile
    # cache's invalidation on the document's node)
    hero = wait_for(
        lambda: (
            (h := client.get("/api/v1/decide", decide).json()["placements"]["hero"])["variant"]
            == "buyers-hero"
            and h
        ),
        message=f"decide never changed:\n{cluster_worker.output()}",
    )
    assert hero["reason"] == "targeted:buyers-hero"
