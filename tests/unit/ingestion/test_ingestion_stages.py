"""Ingestion's two stages: rows first (stage 1), then aggregates, segments and cache (stage 2).

Each event must be folded into its profile exactly once, whatever runs between the stages: a
crash, a re-run, an identify merge, the retention purge or an erasure.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from core.pseudonym import pseudonymize
from identity import services as identity_services
from ingestion import aggregate as ingestion_aggregate
from ingestion import queue as ingestion_queue
from ingestion import retention
from ingestion import store as ingestion_store
from ingestion.models import PendingAggregate
from profiles import privacy
from profiles.models import Event, Profile
from profiles.selectors import profile_cache_key, profile_get_cached
from tests.factories import aggregate_all, event, make_segment, store


def profile_of(visitor: str) -> Profile:
    return Profile.objects.get(key=pseudonymize(visitor))


@pytest.mark.django_db
def test_stage1__batch__rows_stored_and_marked_pending_profile_untouched():
    # Given two queued purchases of one visitor
    ingestion_queue.events_enqueue(
        events=[event("ann", "purchase", value="3.00"), event("ann", "purchase", value="4.00")]
    )
    # When only stage 1 runs
    result = ingestion_store.events_ingest_pending(max_events=100)
    # Then both are rows, both wait for aggregation, and the profile has no aggregates yet
    assert (result.taken, result.stored) == (2, 2)
    assert set(PendingAggregate.objects.values_list("event_id", flat=True)) == set(
        Event.objects.values_list("pk", flat=True)
    )
    assert profile_of("ann").aggregates == {}
    assert ingestion_queue.events_queue_length() == 0


@pytest.mark.django_db
def test_stage2__pending_events__folded_once_cached_and_cleared():
    # Given a buyers segment and two stored purchases waiting for aggregation
    make_segment("buyers", {"profile.aggregates.frequency": {"$gte": 1}})
    ingestion_queue.events_enqueue(
        events=[event("ann", "purchase", value="3.00"), event("ann", "purchase", value="4.00")]
    )
    ingestion_store.events_ingest_pending(max_events=100)
    # When stage 2 runs, then runs again
    first = ingestion_aggregate.profiles_aggregate_pending(max_events=100)
    second = ingestion_aggregate.profiles_aggregate_pending(max_events=100)
    # Then the first folded both into the one profile, and the second had nothing to do
    assert (first.events, first.profiles) == (2, 1)
    assert (second.events, second.profiles) == (0, 0)
    profile = profile_of("ann")
    assert profile.aggregates["frequency"] == 2
    assert profile.aggregates["monetary"] == 7.0
    assert not PendingAggregate.objects.exists()
    # And the decision path's document has the aggregates and the segment
    cached = profile_get_cached(profile_key=profile.key)
    assert cached["aggregates"]["frequency"] == 2
    assert cached["segments"] == ["buyers"]


@pytest.mark.django_db
def test_stage2__several_batches_of_one_visitor__coalesced_into_one_update():
    # Given three stage-1 batches of the same visitor stored while stage 2 did not run
    for value in ("1.00", "2.00", "3.00"):
        ingestion_queue.events_enqueue(events=[event("ann", "purchase", value=value)])
        ingestion_store.events_ingest_pending(max_events=100)
    # When stage 2 runs once, with the profile write watched
    with mock.patch.object(
        ingestion_aggregate,
        "_profiles_write_aggregates",
        wraps=ingestion_aggregate._profiles_write_aggregates,
    ) as write:
        result = ingestion_aggregate.profiles_aggregate_pending(max_events=100)
    # Then the three events were folded in one write of one profile
    assert (result.events, result.profiles) == (3, 1)
    assert write.call_count == 1
    assert len(write.call_args.kwargs["profiles"]) == 1
    assert profile_of("ann").aggregates["frequency"] == 3


@pytest.mark.django_db
def test_stage2__bounded__takes_at_most_max_events_then_the_rest():
    # Given five stored events waiting
    ingestion_queue.events_enqueue(events=[event(f"v{i}") for i in range(5)])
    ingestion_store.events_ingest_pending(max_events=100)
    # When stage 2 runs with a bound of 2, three times
    runs = [ingestion_aggregate.profiles_aggregate_pending(max_events=2).events for _ in range(4)]
    # Then it took 2, 2, 1, then nothing
    assert runs == [2, 2, 1, 0]
    assert sum(p.aggregates["page_view_count"] for p in Profile.objects.all()) == 5


@pytest.mark.django_db(transaction=True)
def test_stage2__crash_after_the_fold__rolled_back_then_retried_exactly_once():
    # Given two stored purchases waiting for aggregation
    ingestion_queue.events_enqueue(
        events=[event("ann", "purchase", value="3.00"), event("ann", "purchase", value="4.00")]
    )
    ingestion_store.events_ingest_pending(max_events=100)
    # When stage 2 fails right after writing the aggregates, before its transaction commits
    real_write = ingestion_aggregate._profiles_write_aggregates

    def write_then_die(**kwargs):
        real_write(**kwargs)
        raise RuntimeError("worker died mid-transaction")

    with (
        mock.patch.object(
            ingestion_aggregate, "_profiles_write_aggregates", side_effect=write_then_die
        ),
        pytest.raises(RuntimeError),
    ):
        ingestion_aggregate.profiles_aggregate_pending(max_events=100)
    # Then nothing of it remains: the profile is untouched and both events are still pending
    assert profile_of("ann").aggregates == {}
    assert PendingAggregate.objects.count() == 2
    # And the next run folds each event exactly once
    assert ingestion_aggregate.profiles_aggregate_pending(max_events=100).events == 2
    assert profile_of("ann").aggregates["frequency"] == 2


@pytest.mark.django_db
def test_stage2__locked_by_another_run__skips_without_touching_anything():
    # Given a pending event and the aggregation lock held elsewhere
    ingestion_queue.events_enqueue(events=[event("ann")])
    ingestion_store.events_ingest_pending(max_events=100)
    from core.redis import get_redis

    lock = get_redis().lock(ingestion_queue.AGGREGATE_LOCK, timeout=5)
    assert lock.acquire(blocking=False)
    try:
        # When stage 2 runs
        result = ingestion_aggregate.profiles_aggregate_pending(max_events=100)
    finally:
        lock.release()
    # Then it says it skipped, and the event still waits
    assert result.skipped_locked
    assert PendingAggregate.objects.count() == 1


@pytest.mark.django_db
def test_merge_between_stages__events_counted_once_in_the_survivor():
    # Given an older profile with a folded purchase, and a newer visitor's purchase stored but
    # not yet aggregated
    ingestion_queue.events_enqueue(
        events=[event("phone", "purchase", value="5.00", occurred_at="2026-01-01T00:00:00+00:00")]
    )
    ingestion_store.events_ingest_pending(max_events=100)
    aggregate_all()
    ingestion_queue.events_enqueue(events=[event("laptop", "purchase", value="7.00")])
    ingestion_store.events_ingest_pending(max_events=100)
    # When identify merges both before stage 2 runs, and stage 2 runs after it
    identity_services.visitor_identify(visitor="laptop", user_id="u-1")
    identity_services.visitor_identify(visitor="phone", user_id="u-1")
    aggregate_all()
    # Then the survivor counts both purchases once: equal to a rebuild from its events
    survivor = Profile.objects.get()
    assert survivor.aggregates["frequency"] == 2
    assert survivor.aggregates["monetary"] == 12.0
    rebuilt = ingestion_aggregate.profiles_recompute_aggregates(profile_ids=[survivor.pk])[
        survivor.pk
    ]
    assert rebuilt.aggregates == survivor.aggregates


@pytest.mark.django_db
def test_purge_between_stages__recent_events_counted_once():
    # Given an expired event and a recent one of the same visitor, both stored, none aggregated
    old = (timezone.now() - timedelta(days=400)).isoformat()
    ingestion_queue.events_enqueue(
        events=[
            event("ann", "purchase", value="9.00", occurred_at=old),
            event("ann", "purchase", value="2.00"),
        ]
    )
    ingestion_store.events_ingest_pending(max_events=100)
    # When the retention purge runs before stage 2, then stage 2
    retention.events_purge_expired(older_than=timezone.now() - timedelta(days=395))
    aggregate_all()
    # Then only the recent purchase counts, once
    aggregates = profile_of("ann").aggregates
    assert (aggregates["frequency"], aggregates["monetary"]) == (1, 2.0)
    assert not PendingAggregate.objects.exists()


@pytest.mark.django_db
def test_erase_between_stages__nothing_pending_and_no_document_recreated():
    # Given a visitor's events stored but not yet aggregated, and another visitor's
    ingestion_queue.events_enqueue(events=[event("ann", "purchase", value="3.00"), event("bob")])
    ingestion_store.events_ingest_pending(max_events=100)
    ann_key = pseudonymize("ann")
    # When ann is erased before stage 2, and stage 2 runs after
    privacy.profile_erase(profile_key=ann_key, actor="test")
    result = aggregate_all()
    # Then nothing of ann waits or comes back; bob is aggregated as usual
    assert result == 1
    assert not Profile.objects.filter(key=ann_key).exists()
    from core.redis import get_redis

    assert get_redis().get(profile_cache_key(ann_key)) is None
    assert not PendingAggregate.objects.exists()
    assert profile_of("bob").aggregates["page_view_count"] == 1


@pytest.mark.django_db
def test_event_deleted_between_stages__its_pending_mark_goes_with_it():
    # Given two stored events waiting for aggregation
    ingestion_queue.events_enqueue(events=[event("ann"), event("ann", "search")])
    ingestion_store.events_ingest_pending(max_events=100)
    # When one event is deleted through the ORM before stage 2 runs
    Event.objects.filter(type="search").delete()
    # Then its pending mark is gone too, and stage 2 folds only the remaining event
    assert PendingAggregate.objects.count() == 1
    result = ingestion_aggregate.profiles_aggregate_pending(max_events=100)
    assert result.events == 1
    assert profile_of("ann").aggregates["event_count"] == 1
    assert not PendingAggregate.objects.exists()


@pytest.mark.django_db
def test_stage2__fold_inputs_from_the_pending_rows__equal_a_rebuild_from_events():
    # Given purchases, carts and categorised views of two visitors, stored by stage 1
    ingestion_queue.events_enqueue(
        events=[
            event("ann", "product_view", properties={"category": "shoes"}),
            event("ann", "add_to_cart", value="12.50", properties={"category": "shoes"}),
            event("ann", "purchase", value="12.50", properties={"category": 7}),
            event("bob", "add_to_cart", value="3.00", properties={"category": True}),
            event("bob", "page_view"),
        ]
    )
    ingestion_store.events_ingest_pending(max_events=100)
    # When stage 2 folds them from its pending rows alone
    aggregate_all()
    incremental = {p.pk: p.aggregates for p in Profile.objects.all()}
    # Then the aggregates are those of a rebuild from the stored events
    rebuilt = ingestion_aggregate.profiles_recompute_aggregates(profile_ids=list(incremental))
    assert {pk: p.aggregates for pk, p in rebuilt.items()} == incremental
    assert incremental[profile_of("ann").pk]["category_affinities"] == {"7": 5, "shoes": 4}


# --- stage 1 lanes ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stage1__first_lane_busy__second_lane_stores_the_batch(redis_client, settings):
    # Given two lanes, the first one held by a running batch, and queued events
    settings.MOSAIC_INGEST_LANES = 2
    (first_list, first_lock), (second_list, _) = ingestion_queue.ingest_lanes()
    ingestion_queue.events_enqueue(events=[event("ann"), event("bob")])
    held = redis_client.lock(first_lock, timeout=5)
    assert held.acquire(blocking=False)
    try:
        # When stage 1 runs
        result = ingestion_store.events_ingest_pending(max_events=100)
    finally:
        held.release()
    # Then the second lane took and stored the batch, and left nothing in either list
    assert (result.taken, result.stored) == (2, 2)
    assert redis_client.llen(first_list) == redis_client.llen(second_list) == 0
    assert ingestion_queue.events_queue_length() == 0


@pytest.mark.django_db
def test_stage1__all_lanes_busy__skipped_and_nothing_taken(redis_client, settings):
    # Given every lane held and a queued event
    settings.MOSAIC_INGEST_LANES = 2
    locks = [redis_client.lock(name, timeout=5) for _, name in ingestion_queue.ingest_lanes()]
    ingestion_queue.events_enqueue(events=[event("ann")])
    assert all(lock.acquire(blocking=False) for lock in locks)
    try:
        # When stage 1 runs
        result = ingestion_store.events_ingest_pending(max_events=100)
    finally:
        for lock in locks:
            lock.release()
    # Then it says so, and the event is still queued
    assert result.skipped_locked
    assert ingestion_queue.events_queue_length() == 1
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_stage1__crashed_batch_in_second_lane__re_processed_by_it(redis_client, settings):
    # Given a batch a crashed run left in the second lane's processing list (and the first lane
    # busy), plus a newer queued event
    settings.MOSAIC_INGEST_LANES = 2
    (_, first_lock), (second_list, _) = ingestion_queue.ingest_lanes()
    left = [event("ann", "purchase", value="2.00"), event("ann")]
    redis_client.rpush(second_list, *[json.dumps(e) for e in left])
    ingestion_queue.events_enqueue(events=[event("bob")])
    held = redis_client.lock(first_lock, timeout=5)
    assert held.acquire(blocking=False)
    try:
        # When stage 1 runs on the second lane
        result = ingestion_store.events_ingest_pending(max_events=100)
    finally:
        held.release()
    # Then the left-over batch is written first, and the queued event stays for the next run
    assert (result.taken, result.stored) == (2, 2)
    assert redis_client.llen(second_list) == 0
    assert ingestion_queue.events_queue_length() == 1


@pytest.mark.django_db
def test_erase__a_lane_busy__waits_then_refuses_busy_and_erases_nothing(redis_client, settings):
    # Given a stored visitor and the second lane held by a batch that does not finish
    settings.MOSAIC_INGEST_LANES = 2
    store(events=[event("ann")])
    (_, _), (_, second_lock) = ingestion_queue.ingest_lanes()
    held = redis_client.lock(second_lock, timeout=5)
    assert held.acquire(blocking=False)
    try:
        # When an erasure is asked, with a short wait
        with (
            mock.patch.object(privacy, "ERASE_LOCK_WAIT_SECONDS", 0.2),
            pytest.raises(privacy.ErasureBusy),
        ):
            privacy.profile_erase(profile_key=pseudonymize("ann"), actor="test")
    finally:
        held.release()
    # Then nothing was erased, and no lock is left behind for the next attempt
    assert Profile.objects.filter(key=pseudonymize("ann")).exists()
    assert privacy.profile_erase(profile_key=pseudonymize("ann"), actor="test").erased


@pytest.mark.django_db
def test_stage1__awkward_text__stored_exactly_as_sent():
    # Given events whose text needs escaping in COPY's text format (tab, newline, carriage
    # return, backslash, quotes, non-ASCII, a JSON escape sequence)
    awkward = 'tab\there\nnew\rline back\\slash "quoted" naïve ✓ \\n literal'
    ingestion_queue.events_enqueue(
        events=[
            event(
                "ann",
                "custom",
                name="sign\tup\\now",
                properties={"note": awkward, "nested": {"k\\ey": [awkward, 1.5, None, True]}},
                context={"url": "https://x.test/a?b=c\\d", "utm": {"source": "news\tletter"}},
            ),
            event("ann", "purchase", value="12.50", properties={"category": "bo\\oks\t"}),
        ]
    )
    # When stage 1 writes them and stage 2 folds them
    ingestion_store.events_ingest_pending(max_events=100)
    aggregate_all()
    # Then every value reads back as sent
    custom = Event.objects.get(type="custom")
    assert custom.name == "sign\tup\\now"
    assert custom.properties == {
        "note": awkward,
        "nested": {"k\\ey": [awkward, 1.5, None, True]},
    }
    assert custom.context == {"url": "https://x.test/a?b=c\\d", "utm": {"source": "news\tletter"}}
    purchase = Event.objects.get(type="purchase")
    assert str(purchase.value) == "12.50"
    assert profile_of("ann").aggregates["category_affinities"] == {"bo\\oks": 5}


# --- stage 2 gives way to a stage-1 backlog ------------------------------------------------------


@pytest.mark.django_db
def test_stage2__stage1_backlog__waits_up_to_yield_seconds_then_folds(settings):
    # Given stored events waiting for aggregation, and more queued than one stage-1 batch
    settings.MOSAIC_EVENT_BATCH_SIZE = 2
    ingestion_queue.events_enqueue(events=[event("ann"), event("bob")])
    ingestion_store.events_ingest_pending(max_events=100)
    ingestion_queue.events_enqueue(events=[event(f"v{i}") for i in range(3)])
    # When stage 2 runs with a yield of 0.3 s
    started = time.monotonic()
    result = ingestion_aggregate.profiles_aggregate_pending(max_events=100, yield_seconds=0.3)
    # Then it waited for the backlog that long at most, then folded what was stored
    assert time.monotonic() - started >= 0.3
    assert result.events == 2


@pytest.mark.django_db
def test_stage2__no_backlog__does_not_wait(settings):
    # Given stored events waiting for aggregation and nothing queued
    ingestion_queue.events_enqueue(events=[event("ann")])
    ingestion_store.events_ingest_pending(max_events=100)
    # When stage 2 runs with a long yield
    started = time.monotonic()
    result = ingestion_aggregate.profiles_aggregate_pending(max_events=100, yield_seconds=30)
    # Then it folds at once
    assert time.monotonic() - started < 10
    assert result.events == 1


@pytest.mark.django_db
def test_stage1__batch_mixing_stored_and_new__new_ones_stored_and_marked_once():
    # Given one event already stored and aggregated
    first = event("ann", "purchase", value="5.00")
    store(events=[first])
    # When a batch holding it again plus two new events is written
    ingestion_queue.events_enqueue(
        events=[event("ann", "purchase", value="1.00"), first, event("bob")]
    )
    result = ingestion_store.events_ingest_pending(max_events=100)
    aggregate_all()
    # Then only the two new ones were stored and marked, and each counts once
    assert (result.taken, result.stored, result.duplicates) == (3, 2, 1)
    assert Event.objects.count() == 3
    aggregates = profile_of("ann").aggregates
    assert (aggregates["frequency"], aggregates["monetary"]) == (2, 6.0)
