"""Ingestion service: queue → database in batches, exactly once, aggregates and profile cache."""

from __future__ import annotations

import json

import pytest

from core.pseudonym import pseudonymize
from ingestion import queue as ingestion_queue
from profiles.models import Event, Profile
from profiles.selectors import profile_get_cached
from tests.factories import event, ingest


@pytest.mark.django_db
def test_ingest__queued_events__stored_with_aggregates_and_cached():
    # Given three queued events of one visitor
    ingestion_queue.events_enqueue(
        events=[
            event("alice"),
            event("alice", "purchase", value="20.00"),
            event("alice", "purchase", value="5.50"),
        ]
    )
    # When the queue is drained
    result = ingest(max_events=100)
    # Then they are stored, the profile aggregates are right and the cache holds them
    assert (result.taken, result.stored, result.duplicates) == (3, 3, 0)
    profile = Profile.objects.get(key=pseudonymize("alice"))
    assert profile.aggregates["purchase_count"] == 2
    assert profile.aggregates["page_view_count"] == 1
    assert profile.aggregates["monetary"] == pytest.approx(25.5)
    cached = profile_get_cached(profile_key=profile.key)
    assert cached["aggregates"]["purchase_count"] == 2


@pytest.mark.django_db
def test_ingest__same_event_id_twice__stored_once():
    # Given the same event queued twice (a client retry)
    duplicate = event("bob", "purchase", value="10.00")
    ingestion_queue.events_enqueue(events=[duplicate])
    ingestion_queue.events_enqueue(events=[duplicate])
    # When drained
    result = ingest(max_events=100)
    # Then it is stored once and counted once
    assert result.stored == 1
    assert Event.objects.count() == 1
    assert Profile.objects.get().aggregates["purchase_count"] == 1


@pytest.mark.django_db
def test_ingest__raw_visitor_id__never_stored():
    ingestion_queue.events_enqueue(events=[event("carol@example.com")])
    ingest(max_events=10)
    profile = Profile.objects.get()
    assert profile.key == pseudonymize("carol@example.com")
    assert "carol" not in profile.key


@pytest.mark.django_db
def test_ingest__batch_left_by_crashed_run__reprocessed_without_double_count(redis_client):
    # Given a batch a crashed run had moved to the processing list after committing it
    first = event("dave", "purchase", value="7.00")
    ingestion_queue.events_enqueue(events=[first])
    ingest(max_events=10)
    redis_client.rpush(ingestion_queue.EVENT_PROCESSING, json.dumps(first))
    ingestion_queue.events_enqueue(events=[event("dave", "purchase", value="3.00")])
    # When ingestion runs twice (the leftover first, then the queue)
    ingest(max_events=10)
    ingest(max_events=10)
    # Then every event is stored exactly once
    assert Event.objects.count() == 2
    assert Profile.objects.get().aggregates["monetary"] == pytest.approx(10.0)
    assert redis_client.llen(ingestion_queue.EVENT_PROCESSING) == 0


@pytest.mark.django_db
def test_ingest__bounded_batch__leaves_the_rest_queued(redis_client):
    ingestion_queue.events_enqueue(events=[event(f"v{i}") for i in range(5)])
    result = ingest(max_events=2)
    assert result.taken == 2
    assert redis_client.llen(ingestion_queue.EVENT_QUEUE) == 3


@pytest.mark.django_db
def test_ingest__empty_queue__does_nothing():
    result = ingest(max_events=10)
    assert result.taken == 0
