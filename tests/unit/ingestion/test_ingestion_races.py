"""Ingestion against a concurrent identify merge, on PostgreSQL's row locks.

The events' profile column has no database constraint (segments.models.Event): stage 1 locks
its batch's profiles FOR KEY SHARE and a merge locks its profiles FOR UPDATE before moving their
events. Whichever comes second waits; either way no event is left on a deleted profile.
"""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction

from core.pseudonym import pseudonymize
from identity import services as identity_services
from ingestion import store as ingestion_store
from profiles import services as profile_services
from profiles.models import Event, Profile
from tests.conftest import wait_for
from tests.factories import event

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks: SQLite runs one writing transaction at a time (CI's PostgreSQL run "
        "covers this)",
    ),
]


def _in_thread(fn) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def _blocked_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        # Activity is read once per transaction unless the snapshot is cleared (the caller may
        # be inside one).
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def _wait_until_blocked_on_a_lock() -> None:
    wait_for(_blocked_on_a_lock, timeout=10, interval=0.02, message="nothing waited on a row lock")


def _orphans() -> int:
    return Event.objects.exclude(profile_id__in=Profile.objects.values("id")).count()


@pytest.fixture
def user_and_anonymous_visitor():
    # The user's profile first (older: it survives the merge), then an anonymous visitor's.
    ingestion_store.events_store(events=[event("laptop", "page_view")])
    identity_services.visitor_identify(visitor="laptop", user_id="u-1")
    ingestion_store.events_store(events=[event("phone", "page_view")])
    return (
        Profile.objects.get(key=pseudonymize("laptop")),
        Profile.objects.get(key=pseudonymize("phone")),
    )


def test_ingest__batch_locked_profile_first__merge_waits_and_moves_its_events(
    user_and_anonymous_visitor,
):
    # Given a batch of the anonymous visitor stored but not yet committed
    survivor, anonymous = user_and_anonymous_visitor
    with transaction.atomic():
        ingestion_store.events_store(events=[event("phone", "add_to_cart", value="5.00")])
        # When the visitor logs in meanwhile (a merge into the user's profile)
        merge, outcome = _in_thread(
            lambda: identity_services.visitor_identify(visitor="phone", user_id="u-1")
        )
        _wait_until_blocked_on_a_lock()
        # (the batch commits while the merge waits)
    merge.join(10)
    # Then the merge went ahead after the commit and took the batch's event along
    assert "error" not in outcome
    assert outcome["result"].profile.pk == survivor.pk
    assert not Profile.objects.filter(pk=anonymous.pk).exists()
    assert Event.objects.filter(profile_id=survivor.pk).count() == 3
    assert _orphans() == 0


def test_ingest__merge_locked_profile_first__batch_refused_then_stored_on_survivor(
    user_and_anonymous_visitor,
):
    # Given a merge of the anonymous visitor into the user's profile, not yet committed
    survivor, anonymous = user_and_anonymous_visitor
    merged = threading.Event()
    release = threading.Event()

    def merge_and_hold() -> None:
        with transaction.atomic():
            identity_services.visitor_identify(visitor="phone", user_id="u-1")
            merged.set()
            release.wait(10)

    merge, merge_outcome = _in_thread(merge_and_hold)
    assert merged.wait(10)
    # When a batch of that visitor is stored meanwhile
    batch = [event("phone", "purchase", value="9.00")]
    store, store_outcome = _in_thread(lambda: ingestion_store.events_store(events=batch))
    _wait_until_blocked_on_a_lock()
    release.set()
    merge.join(10)
    store.join(10)
    # Then the batch found the profile merged away and was refused (the task retries it) ...
    assert isinstance(store_outcome.get("error"), IntegrityError)
    assert "error" not in merge_outcome
    assert _orphans() == 0
    # ... and the retry stores it on the surviving profile
    assert ingestion_store.events_store(events=batch).stored == 1
    assert Event.objects.get(event_id=batch[0]["event_id"]).profile_id == survivor.pk
    assert not Profile.objects.filter(pk=anonymous.pk).exists()
    assert _orphans() == 0


def test_identify__new_visitor_while_batch_holds_users_profile__no_deadlock(
    user_and_anonymous_visitor, monkeypatch
):
    # Given identify of a brand-new device pausing right after it made the device's profile
    survivor, _ = user_and_anonymous_visitor
    created, go = threading.Event(), threading.Event()
    original = profile_services.profiles_get_or_create

    def create_then_pause(*, keys):
        found = original(keys=keys)
        created.set()
        go.wait(10)
        return found

    monkeypatch.setattr(profile_services, "profiles_get_or_create", create_then_pause)
    identify, identify_outcome = _in_thread(
        lambda: identity_services.visitor_identify(visitor="tablet", user_id="u-1")
    )
    assert created.wait(10)
    # When a batch holding the user's profile and the new device's first event comes in
    batch = [event("laptop", "page_view"), event("tablet", "page_view")]
    store, store_outcome = _in_thread(lambda: ingestion_store.events_store(events=batch))
    wait_for(lambda: not store.is_alive() or _blocked_on_a_lock(), timeout=10, interval=0.02)
    go.set()
    identify.join(15)
    store.join(15)
    # Then neither was chosen as a deadlock victim, and the batch's events end on the user's
    # profile (the new device's merged into it)
    assert "error" not in identify_outcome, identify_outcome.get("error")
    assert "error" not in store_outcome, store_outcome.get("error")
    assert identify_outcome["result"].profile.pk == survivor.pk
    stored = Event.objects.filter(event_id__in=[e["event_id"] for e in batch])
    assert set(stored.values_list("profile_id", flat=True)) == {survivor.pk}
    assert _orphans() == 0
