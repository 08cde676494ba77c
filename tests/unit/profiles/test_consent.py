"""Consent: POST /api/v1/consent, append-only history, GPC, analytics enforced at storage."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.utils import timezone

from core.pseudonym import pseudonymize
from ingestion import queue as ingestion_queue
from profiles.consent import purpose_allowed
from profiles.models import AuditAction, AuditEntry, ConsentRecord, Event, Profile
from profiles.selectors import profile_get_cached
from tests.factories import event, ingest

URL = "/api/v1/consent"


def post(client, body, **extra):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **extra)


def consent(visitor="ann", **purposes):
    return {
        "visitor": visitor,
        "purposes": purposes or {"analytics": True},
        "source": "banner",
        "policy_version": "2026-01",
    }


@pytest.mark.django_db
def test_consent__choices__current_state_history_cache_and_audit(client, redis_client):
    # Given a visitor who accepts analytics and refuses marketing
    # When the choice is posted
    response = post(client, consent("ann-7f3q", analytics=True, marketing=False))
    # Then the current state (necessary implied) is on the profile, in history, in Redis, audited
    assert response.status_code == 201, response.content
    state = {"necessary": True, "analytics": True, "marketing": False}
    assert response.json()["consent"] == state
    profile = Profile.objects.get(key=pseudonymize("ann-7f3q"))
    assert profile.consent == state
    record = ConsentRecord.objects.get(profile=profile)
    assert (record.purposes, record.source, record.policy_version, record.gpc) == (
        state,
        "banner",
        "2026-01",
        False,
    )
    assert profile_get_cached(profile_key=profile.key)["consent"] == state
    entry = AuditEntry.objects.get(action=AuditAction.CONSENT_CHANGE)
    assert (entry.actor, entry.subject) == ("api", profile.key)
    assert entry.details["after"] == state
    assert "ann-7f3q" not in json.dumps(entry.details)


@pytest.mark.django_db
def test_consent__two_changes__history_appended_and_partial_merged(client):
    # Given a first full choice
    post(client, consent(analytics=True, personalization=True, marketing=True))
    # When a later partial change refuses personalization only
    response = post(client, consent(personalization=False))
    # Then the history has both records (the first unchanged) and the state merges them
    assert response.status_code == 201
    profile = Profile.objects.get(key=pseudonymize("ann"))
    history = list(ConsentRecord.objects.filter(profile=profile).order_by("recorded_at", "id"))
    assert [r.purposes.get("personalization") for r in history] == [True, False]
    assert profile.consent == {
        "necessary": True,
        "analytics": True,
        "personalization": False,
        "marketing": True,
    }


@pytest.mark.django_db
def test_consent__record_edited__refused():
    # Given a stored consent record
    profile = Profile.objects.create(key=pseudonymize("ann"))
    record = ConsentRecord.objects.create(profile=profile, purposes={"analytics": True})
    # When someone tries to rewrite it
    record.purposes = {"analytics": False}
    # Then the model refuses: the history is append-only
    with pytest.raises(ValueError, match="append-only"):
        record.save()


@pytest.mark.django_db
def test_consent__gpc_header__marketing_off(client):
    # Given a browser sending Sec-GPC: 1 while the page says marketing: true
    # When the consent is posted
    response = post(client, consent(analytics=True, marketing=True), HTTP_SEC_GPC="1")
    # Then marketing is recorded as refused and the GPC signal is kept in the history
    assert response.status_code == 201
    assert response.json()["consent"]["marketing"] is False
    assert response.json()["gpc"] is True
    record = ConsentRecord.objects.get()
    assert record.gpc is True
    assert record.purposes["marketing"] is False
    assert Profile.objects.get().consent["marketing"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purposes": {"analytics": True}}, "visitor"),
        (consent(necessary=False), "purposes.necessary"),
        (consent(analytics="yes"), "purposes.analytics"),
        (consent(analytics=1), "purposes.analytics"),
        (consent(advertising=True), "purposes.advertising"),
        ({**consent(), "purposes": {}}, "purposes"),
        ({**consent(), "purposes": ["analytics"]}, "purposes"),
        ({**consent(), "colour": "red"}, "colour"),
        ({**consent(), "policy_version": "x" * 33}, "policy_version"),
        ({**consent(), "visitor": "v" * 201}, "visitor"),
        ("{not json", "body"),
    ],
)
@pytest.mark.django_db
def test_consent__bad_input__400_names_field_nothing_written(client, body, field):
    # Given a consent body with one bad field
    # When it is posted
    response = post(client, body)
    # Then it is refused naming the field, and nothing at all is written
    assert response.status_code == 400, response.content
    assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    assert not Profile.objects.exists()
    assert not ConsentRecord.objects.exists()
    assert not AuditEntry.objects.exists()


def test_purpose_allowed__choice_or_default_policy__explicit_choice_wins():
    # Given the two default policies, Then explicit choices win, necessary is always allowed
    assert purpose_allowed({"analytics": False}, "analytics", default="opt-out") is False
    assert purpose_allowed({}, "analytics", default="opt-out") is True
    assert purpose_allowed(None, "analytics", default="opt-in") is False
    assert purpose_allowed({"analytics": True}, "analytics", default="opt-in") is True
    assert purpose_allowed(None, "necessary", default="opt-in") is True


@pytest.mark.django_db
def test_ingest__analytics_refused__events_not_stored_but_counted(client, redis_client):
    # Given a visitor who refused analytics and one who did not choose (opt-out default)
    post(client, consent("refuser", analytics=False))
    ingestion_queue.events_enqueue(
        events=[event("refuser"), event("refuser", "purchase", value="3.00"), event("other")]
    )
    # Then the refused ones never reached the queue (their consent is known from the profile
    # document): dropped before queueing, counted per day
    queued = [json.loads(raw) for raw in redis_client.lrange(ingestion_queue.EVENT_QUEUE, 0, -1)]
    assert [item["visitor_key"] for item in queued] == [pseudonymize("other")]
    # When the queue is drained
    result = ingest(max_events=100)
    # Then only the other visitor's event is stored
    assert (result.taken, result.stored, result.dropped_no_consent) == (1, 1, 0)
    assert result.duplicates == 0
    assert not Event.objects.filter(profile__key=pseudonymize("refuser")).exists()
    assert Event.objects.filter(profile__key=pseudonymize("other")).count() == 1
    counter = ingestion_queue.events_dropped_counter_key(timezone.now())
    assert counter.startswith("mosaic:events:dropped:no_consent:")
    assert int(redis_client.get(counter)) == 2
    assert redis_client.ttl(counter) > 0


@pytest.mark.django_db
@override_settings(MOSAIC_CONSENT_DEFAULT="opt-in")
def test_ingest__opt_in_without_record__not_stored_no_profile(client, redis_client):
    # Given the opt-in policy, a visitor who never chose and one who granted analytics
    post(client, consent("granted", analytics=True))
    ingestion_queue.events_enqueue(events=[event("silent"), event("granted")])
    # When drained
    result = ingest(max_events=100)
    # Then the silent visitor's event is neither stored nor given a profile
    assert (result.stored, result.dropped_no_consent) == (1, 1)
    assert not Profile.objects.filter(key=pseudonymize("silent")).exists()
    assert Event.objects.get().profile.key == pseudonymize("granted")
