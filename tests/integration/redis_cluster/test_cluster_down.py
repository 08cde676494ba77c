"""A cluster whose nodes are all down is "Redis unavailable", as a dead single server is: decide
answers with its fallbacks, the events endpoint 503 with Retry-After, never a 500 (redis-py
raises RedisClusterException, not a RedisError, when no node answers: core.redis translates)."""

from __future__ import annotations

import json

import pytest

from core import redis as core_redis
from personalization.visitors import visitor_load
from tests.factories import event, make_placement, make_variant


@pytest.fixture
def cluster_down(on_cluster):
    """Every node stopped for the test (a client built before and one built during), then
    started again with their data."""
    for i in range(3):
        on_cluster.stop(i)
    yield
    for i in range(3):
        on_cluster.start(i)
    on_cluster.wait_ok()


@pytest.mark.django_db
def test_cluster_all_nodes_down__decide_falls_back_events_503(on_cluster, client, request):
    # Given a placement with a variant for a segment, served once with the cluster up
    hero = make_placement("hero")
    make_variant(hero, "vip", condition={"profile.segments": {"$in": ["vip"]}})
    assert client.get("/api/v1/decide", {"placements": "hero", "visitor": "v"}).status_code == 200
    # When every node of the cluster stops (and a process starts afresh meanwhile)
    request.getfixturevalue("cluster_down")
    for fresh in (False, True):
        if fresh:
            core_redis._clients.clear()
        # Then decide still answers, with the default and a reason saying why
        response = client.get("/api/v1/decide", {"placements": "hero", "visitor": "v"})
        assert response.status_code == 200, response.content
        assert response.json()["placements"]["hero"]["variant"] == "default"
        assert visitor_load(visitor_id="v")[1] == "unavailable"  # Redis down, not "new"
        # And the events endpoint says to retry, in the error shape, accepting nothing
        posted = client.post(
            "/api/v1/events",
            data=json.dumps({"events": [event("v")]}),
            content_type="application/json",
        )
        assert posted.status_code == 503, posted.content
        assert "Retry-After" in posted
        assert posted.json()["errors"][0]["field"] == "events"
