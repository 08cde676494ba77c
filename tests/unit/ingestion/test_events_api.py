"""POST /api/v1/events: per-event validation, durable queueing, clear 4xx answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from ingestion import queue as ingestion_queue
from ingestion import tasks as ingestion_tasks
from ingestion.queue import EVENT_QUEUE
from tests.factories import event

URL = "/api/v1/events"


def post(client, body, **extra):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **extra)


def assert_partly_accepted(response, *, accepted: int, rejected: dict[int, set[str]]) -> None:
    """A 202 that accepted `accepted` events and refused those at the indexes of `rejected`,
    each naming these fields."""
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == accepted
    assert [r["index"] for r in body["rejected"]] == list(rejected)
    for refusal in body["rejected"]:
        assert {e["field"] for e in refusal["errors"]} == rejected[refusal["index"]]


@pytest.mark.django_db
def test_events__valid_batch__accepted_and_queued(client, redis_client):
    # Given two valid events
    batch = {"events": [event("v1"), event("v1", "purchase", value=12.5, currency="EUR")]}
    # When they are posted
    response = post(client, batch)
    # Then both are accepted and durably queued in Redis
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 2, "rejected": []}
    assert redis_client.llen(EVENT_QUEUE) == 2


@pytest.mark.django_db
def test_events__one_invalid__rejected_by_index_others_accepted(client, redis_client):
    # Given a batch whose second event has an unknown key (and an unknown type)
    bad = event("v1", "teleport")
    bad["colour"] = "red"
    batch = {"events": [event("v1"), bad, event("v2")]}
    # When posted
    response = post(client, batch)
    # Then the valid ones are accepted and the bad one is named by index with its fields
    # (unknown keys are refused first, by name, before the declared fields are checked)
    assert_partly_accepted(response, accepted=2, rejected={1: {"colour"}})
    assert redis_client.llen(EVENT_QUEUE) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        ({"type": "teleport"}, "type"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"visitor": ""}, "visitor"),
        ({"value": "abc"}, "value"),
        ({"currency": "euro"}, "currency"),
        ({"properties": [1, 2]}, "properties"),
        ({"occurred_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "occurred_at"),
        ({"occurred_at": "1990-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"context": {"url": "x", "cookie": "y"}}, "context.cookie"),
    ],
)
def test_events__bad_field__400_names_the_field(client, redis_client, mutation, field):
    # Given a single event with one bad field
    response = post(client, {"events": [{**event("v1"), **mutation}]})
    # Then the answer is 400, names the field, and nothing is queued
    assert response.status_code == 400
    errors = response.json()["rejected"][0]["errors"]
    assert field in {e["field"] for e in errors}, errors
    assert redis_client.llen(EVENT_QUEUE) == 0


@pytest.mark.django_db
def test_events__custom_without_name__rejected(client):
    response = post(client, {"events": [event("v1", "custom")]})
    assert response.status_code == 400
    assert response.json()["rejected"][0]["errors"][0]["field"] == "name"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "body"),
        ({"events": []}, "events"),
        ({"events": "nope"}, "events"),
        ({}, "events"),
        ({"events": [], "extra": 1}, "extra"),
        ([1, 2], "body"),
    ],
)
def test_events__bad_envelope__400_with_field(client, body, field):
    response = post(client, body)
    assert response.status_code == 400
    assert field in {e["field"] for e in response.json()["errors"]}


@pytest.mark.django_db
@override_settings(MOSAIC_EVENT_MAX_BATCH=3)
def test_events__oversized_batch__400_nothing_queued(client, redis_client):
    response = post(client, {"events": [event("v1") for _ in range(4)]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "events"
    assert "At most 3" in response.json()["errors"][0]["message"]
    assert redis_client.llen(EVENT_QUEUE) == 0


@pytest.mark.django_db
def test_events__redis_down__503_with_retry_after(client, settings):
    # Given Redis is unreachable
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    # When a valid batch is posted
    response = post(client, {"events": [event("v1")]})
    # Then the client is told to retry: nothing was acknowledged
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["errors"][0]["field"] == "events"


@pytest.mark.django_db
def test_events__get__405(client):
    assert client.get(URL).status_code == 405


@pytest.mark.django_db
def test_events__nul_character_in_properties__rejected_by_index(client, redis_client):
    # Given a batch whose second event carries U+0000 in a nested property value (PostgreSQL's
    # jsonb cannot store it: queued, it would fail its batch at every retry), and a third event
    # whose property holds a literal backslash-u0000 text (which is fine)
    batch = {
        "events": [
            event("v1"),
            event("v1", properties={"a": {"b": ["x\u0000y"]}}),
            event("v1", properties={"a": "\\u0000 is how JSON writes NUL"}),
        ]
    }
    # When posted
    response = post(client, batch)
    # Then only the NUL one is refused, naming properties; the others are queued
    assert_partly_accepted(response, accepted=2, rejected={1: {"properties"}})
    assert redis_client.llen(EVENT_QUEUE) == 2


@pytest.mark.django_db
def test_events__integer_beyond_64_bits__rejected_by_index_not_rounded(client, redis_client):
    # Given an event whose property is an integer too large for 64 bits, and a valid one with
    # the largest unsigned 64-bit integer
    big = 123456789012345678901234567890
    batch = {
        "events": [
            event("v1", properties={"n": big}),
            event("v1", properties={"n": 2**64 - 1, "m": -(2**63)}),
        ]
    }
    # When posted
    response = post(client, batch)
    # Then the first is refused naming properties (never silently rounded to a float), and the
    # second is queued with its integers exact
    assert_partly_accepted(response, accepted=1, rejected={0: {"properties"}})
    queued = json.loads(redis_client.lrange(EVENT_QUEUE, 0, -1)[0])
    assert queued["properties"] == {"n": 2**64 - 1, "m": -(2**63)}


@pytest.mark.django_db
def test_events__nan__400_naming_body(client):
    # Given a body with NaN (not JSON), When posted, Then the whole body is refused naming it
    response = client.post(
        "/api/v1/events",
        data='{"events": [{"value": NaN}]}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"body"}


@pytest.mark.django_db(transaction=True)
def test_events__posts_while_a_trigger_is_pending__one_ingestion_task(client, redis_client):
    # Given no ingestion task pending (the broker is this Redis's "celery" list)
    assert redis_client.llen("celery") == 0
    # When three batches are posted before any worker starts the task
    for visitor in ("v1", "v2", "v3"):
        assert post(client, {"events": [event(visitor)]}).status_code == 202
    # Then one task stands for all three: the later requests found its trigger pending
    assert redis_client.llen("celery") == 1
    # And once the task has started (it releases the trigger), the next batch triggers again
    ingestion_queue.task_trigger_release(ingestion_tasks.INGEST_TRIGGER)
    assert post(client, {"events": [event("v4")]}).status_code == 202
    assert redis_client.llen("celery") == 2


@pytest.mark.django_db
def test_task_trigger__redis_down__claims_so_the_task_is_still_enqueued(settings):
    # Given Redis unreachable, When a trigger is claimed, Then the caller is told to enqueue
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert ingestion_queue.task_trigger_claim("anything") is True


@pytest.mark.django_db
def test_events__deeply_nested_body_with_long_digits__400_naming_body(client):
    # Given a body that the standard library must parse (a 19-digit run) and that nests deeper
    # than it can recurse
    body = '{"events": [{"properties": {"n": 1234567890123456789, "x": ' + "[" * 5000
    body += "]" * 5000 + "}}]}"
    # When posted, Then it is refused as a body, not answered with a 500
    response = client.post("/api/v1/events", data=body, content_type="application/json")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"body"}


@pytest.mark.django_db
def test_traits__undeclared_integer_beyond_64_bits__cached_document_keeps_it(client):
    # Given an undeclared trait holding an integer too large for 64 bits, set through the API
    big = 123456789012345678901234567890
    response = client.post(
        "/api/v1/traits",
        data=json.dumps({"visitor": "v-big", "traits": {"loyalty_id": big}}),
        content_type="application/json",
    )
    # Then it is stored, and the decision path's cached document holds the same integer
    assert response.status_code in (200, 201), response.content
    from core.pseudonym import pseudonymize
    from profiles.selectors import profile_get_cached

    cached = profile_get_cached(profile_key=pseudonymize("v-big"))
    assert cached["traits"]["loyalty_id"] == big
