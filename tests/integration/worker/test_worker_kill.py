"""Reliability: a Celery worker killed while writing batches loses and duplicates nothing."""

from __future__ import annotations

import signal

import pytest

from ingestion import queue as ingestion_queue
from ingestion.models import PendingAggregate
from ingestion.tasks import events_ingest_pending, profiles_aggregate_pending
from profiles.models import Event, Profile
from tests.conftest import start_worker, wait_for
from tests.factories import event

pytestmark = [pytest.mark.worker, pytest.mark.slow]

EVENTS = 4000
VISITORS = 200
# A short yield: with batches of 100, stage 2 would otherwise wait its 3 s default per run.
WORKER_ENV = {
    "EVENT_BATCH_SIZE": "100",
    "MOSAIC_INGEST_LOCK_SECONDS": "2",
    "MOSAIC_AGGREGATE_YIELD_SECONDS": "0.2",
}


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batches__restarted__every_event_stored_exactly_once(redis_url, tmp_path):
    # Given 4,000 accepted purchases of 200 visitors waiting in the durable queue
    ingestion_queue.events_enqueue(
        events=[event(f"k{i % VISITORS}", "purchase", value="1.00") for i in range(EVENTS)]
    )
    first = start_worker(redis_url, tmp_path / "first.log", **WORKER_ENV)

    # When the worker is killed (SIGKILL: no clean-up at all) once it has written some batches
    events_ingest_pending.delay()
    wait_for(lambda: Event.objects.count() >= 300, timeout=60, message=first.output())
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    stored_at_kill = Event.objects.count()
    assert stored_at_kill < EVENTS, "the worker finished before it was killed: nothing tested"

    # And a new worker is started and ingestion triggered again (as beat would)
    second = start_worker(redis_url, tmp_path / "second.log", **WORKER_ENV)
    try:

        def drained() -> bool:
            # Beat's safety nets, sped up: both stages of ingestion.
            if Event.objects.count() < EVENTS:
                events_ingest_pending.delay()
                return False
            if PendingAggregate.objects.exists():
                profiles_aggregate_pending.delay()
                return False
            return True

        wait_for(drained, timeout=120, interval=1.0, message=second.output())
    finally:
        second.process.terminate()
        second.process.wait(timeout=15)

    # Then every accepted event is stored exactly once, and the aggregates count each once
    assert Event.objects.count() == EVENTS
    assert Event.objects.values("event_id").distinct().count() == EVENTS
    assert sum(p.aggregates["purchase_count"] for p in Profile.objects.all()) == EVENTS
    assert ingestion_queue.events_queue_length() == 0
