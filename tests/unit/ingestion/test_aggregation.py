"""Profile aggregates as ingestion keeps them: incremental batches equal the rebuild from stored
events, a re-run batch changes nothing, old formats are rebuilt, query counts are bounded."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from core.pseudonym import pseudonymize
from ingestion import aggregate as ingestion_aggregate
from ingestion import queue as ingestion_queue
from ingestion import store as ingestion_store
from profiles.models import Profile
from tests.factories import event, ingest, make_segment

TYPES = ["page_view", "product_view", "add_to_cart", "remove_from_cart", "purchase", "search"]
CATEGORIES = [None, *[f"cat{i}" for i in range(14)]]


def _random_history(seed: int, visitors: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=20)
    events = []
    for _ in range(count):
        type_ = rng.choice(TYPES)
        fields = {
            "occurred_at": (start + timedelta(minutes=rng.randint(0, 20 * 24 * 60))).isoformat()
        }
        if type_ in ("add_to_cart", "remove_from_cart", "purchase"):
            fields["value"] = f"{rng.randint(1, 20000) / 100:.2f}"
        if rng.random() < 0.8:
            fields["properties"] = {"category": rng.choice(CATEGORIES[1:])}
        events.append(event(f"agg-{rng.randrange(visitors)}", type_, **fields))
    events.sort(key=lambda e: e["occurred_at"])
    return events


@pytest.mark.django_db
def test_aggregates__ingested_in_batches__equal_the_rebuild_from_stored_events():
    # Given a random history of 600 events of 12 visitors ingested in time-ordered batches of 100
    history = _random_history(seed=7, visitors=12, count=600)
    ingestion_queue.events_enqueue(events=history)
    while ingest(max_events=100).taken:
        pass
    incremental = {p.pk: p.aggregates for p in Profile.objects.all()}
    # When the aggregates are rebuilt from scratch from the stored events
    ingestion_aggregate.profiles_recompute_aggregates(profile_ids=list(incremental))
    # Then both are identical
    rebuilt = {p.pk: p.aggregates for p in Profile.objects.all()}
    assert rebuilt == incremental
    assert sum(a["event_count"] for a in rebuilt.values()) == 600


@pytest.mark.django_db
def test_aggregates__batch_rerun_after_crash__aggregates_unchanged(redis_client):
    # Given a batch stored and applied, then left in the processing list by a "crash"
    batch = _random_history(seed=3, visitors=4, count=50)
    ingestion_queue.events_enqueue(events=batch)
    ingest(max_events=100)
    before = {p.pk: p.aggregates for p in Profile.objects.all()}
    redis_client.rpush(ingestion_queue.EVENT_PROCESSING, *[json.dumps(e) for e in batch])
    # When ingestion runs again
    result = ingest(max_events=100)
    # Then nothing is stored and no aggregate moves
    assert (result.taken, result.stored) == (50, 0)
    assert {p.pk: p.aggregates for p in Profile.objects.all()} == before


@pytest.mark.django_db
def test_aggregates__old_format_profile__rebuilt_on_next_batch():
    # Given a profile whose aggregates were written by the previous version (no sessions etc.)
    ingestion_queue.events_enqueue(events=[event("old", "purchase", value="10.00")])
    ingest(max_events=10)
    profile = Profile.objects.get(key=pseudonymize("old"))
    profile.aggregates = {"purchase_count": 1, "event_count": 1, "monetary": 10.0}
    profile.save(update_fields=["aggregates"])
    # When a new event arrives
    ingestion_queue.events_enqueue(events=[event("old", "purchase", value="5.00")])
    ingest(max_events=10)
    # Then the aggregates are complete and count both purchases once
    profile.refresh_from_db()
    assert profile.aggregates["frequency"] == 2
    assert profile.aggregates["monetary"] == 15.0
    assert profile.aggregates["sessions"] == 1


@pytest.mark.django_db
def test_aggregates__batch_of_200_events_over_50_visitors__bounded_queries(
    django_assert_max_num_queries,
):
    # Given two active condition segments and a batch of 200 events of 50 visitors
    make_segment("buyers", {"profile.aggregates.frequency": {"$gte": 1}})
    make_segment("carts", {"profile.aggregates.cart_value": {"$gt": 0}})
    ingestion_queue.events_enqueue(events=_random_history(seed=11, visitors=50, count=200))
    # When it is stored (stage 1), then folded into the profiles, segments and cache (stage 2)
    # (stage 1: 14 with new visitors, whose keys are checked for a merge that raced the batch)
    with django_assert_max_num_queries(14):
        result = ingestion_store.events_ingest_pending(max_events=1000)
    with django_assert_max_num_queries(20):
        folded = ingestion_aggregate.profiles_aggregate_pending(max_events=1000)
    # Then it was one batch of 200 and one aggregation run over its visitors, each with a
    # query count independent of events and visitors
    assert (result.taken, result.stored) == (200, 200)
    assert (folded.events, folded.profiles) == (200, result.profiles)
