"""The events endpoint's one schema (ingestion.schemas.Event): what it queues, what it refuses
(naming the field), and hostile events answered by a bounded 4xx, never a 500."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from core.renderers import ORJSONRenderer
from ingestion.queue import EVENT_QUEUE
from ingestion.schemas import EVENT, event_validate, events_validate
from tests.factories import event

URL = "/api/v1/events"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def validate(raw):
    return event_validate(raw, now=NOW, zone=UTC)


def post(client, body):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json")


def test_event_validate__full_event__queued_shape_canonical():
    # Given an event using every field, spelled loosely (upper-case uuid, spaces, int amount)
    event_id = uuid.uuid4()
    raw = {
        "event_id": str(event_id).upper(),
        "visitor": "  v1  ",
        "user_id": 42,
        "type": "purchase",
        "name": " order ",
        "properties": {"category": "shoes", "n": [1, {"a": None}]},
        "value": 20,
        "currency": " EUR",
        "occurred_at": "2026-11-01T13:00:00+02:00",
        "context": {"url": " https://x.test/a ", "utm": {"source": "news"}, "locale": ""},
    }
    # When it is validated
    queued, errors = validate(raw)
    # Then it is queued in the shape events_enqueue takes: canonical id, trimmed text, the
    # amount as text to the cent, the time in the current zone, only the context keys sent
    assert errors == []
    assert queued == {
        "event_id": str(event_id),
        "visitor": "v1",
        "user_id": "42",
        "type": "purchase",
        "name": "order",
        "properties": {"category": "shoes", "n": [1, {"a": None}]},
        "value": "20.00",
        "currency": "EUR",
        "occurred_at": "2026-11-01T11:00:00+00:00",
        "context": {"url": "https://x.test/a", "utm": {"source": "news"}, "locale": ""},
    }
    assert type(queued["type"]) is str  # not the enum: the queue writes JSON


def test_event_validate__minimal_event__defaults_without_optional_keys():
    # Given an event with only its required fields
    raw = {"event_id": str(uuid.uuid4()), "visitor": "v1", "type": "page_view"}
    # When validated
    queued, _ = validate(raw)
    # Then the defaults are filled (now, no name, no properties) and nothing else is added
    assert queued is not None
    assert set(queued) == {"event_id", "visitor", "type", "name", "properties", "occurred_at"}
    assert queued["occurred_at"] == NOW.isoformat()
    assert (queued["name"], queued["properties"]) == ("", {})


def test_event_validate__naive_time__taken_in_current_zone():
    queued, _ = validate(event("v1", occurred_at="2026-11-01T10:00:00.123"))
    assert queued is not None
    assert queued["occurred_at"] == "2026-11-01T10:00:00.123000+00:00"


def test_event_validate__value_null__queued_as_null():
    queued, _ = validate(event("v1", "purchase", value=None, occurred_at=NOW.isoformat()))
    assert queued is not None
    assert queued["value"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"event_id": None}, "event_id"),
        ({"visitor": ""}, "visitor"),
        ({"visitor": "   "}, "visitor"),
        ({"visitor": "a\nb"}, "visitor"),
        ({"visitor": "a\x85b"}, "visitor"),
        ({"visitor": "v" * 201}, "visitor"),
        ({"visitor": True}, "visitor"),
        ({"user_id": ""}, "user_id"),
        ({"type": "teleport"}, "type"),
        ({"type": "custom"}, "name"),
        ({"name": "x\x00y"}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"properties": [1]}, "properties"),
        ({"properties": {"k": "a\x00"}}, "properties"),
        ({"properties": {"a\x00": 1}}, "properties"),
        ({"properties": {"k": 2**64}}, "properties"),
        ({"properties": {"k": [-(2**63) - 1]}}, "properties"),
        ({"value": "abc"}, "value"),
        ({"value": "1.234"}, "value"),
        ({"value": "NaN"}, "value"),
        ({"value": True}, "value"),
        ({"value": 10**12}, "value"),
        ({"currency": "euro"}, "currency"),
        ({"currency": "eur"}, "currency"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": 1700000000}, "occurred_at"),
        ({"occurred_at": (NOW + timedelta(minutes=11)).isoformat()}, "occurred_at"),
        ({"occurred_at": (NOW - timedelta(days=365 * 5 + 1)).isoformat()}, "occurred_at"),
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at"),
        ({"context": "x"}, "context"),
        ({"context": {"cookie": "y"}}, "context.cookie"),
        ({"context": {"url": None}}, "context.url"),
        ({"context": {"url": "u" * 2001}}, "context.url"),
        ({"context": {"user_agent": "a" * 501}}, "context.user_agent"),
        ({"context": {"locale": "l" * 36}}, "context.locale"),
        ({"context": {"utm": {"source": ""}}}, "context.utm.source"),
        ({"context": {"utm": {f"k{i}": "v" for i in range(21)}}}, "context.utm"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_event_validate__bad_field__refused_naming_it(overrides, field):
    # Given an otherwise valid event with one bad field
    raw = {**event("v1", occurred_at=NOW.isoformat()), **overrides}
    # When validated
    queued, errors = validate(raw)
    # Then it is refused, naming exactly that field
    assert queued is None
    assert {e["field"] for e in errors} == {field}, errors
    assert all(e["message"] for e in errors)


def test_event_validate__unknown_keys_and_bad_fields__only_unknown_named():
    # Given an event of another shape: unknown keys and a bad declared field
    raw = {**event("v1", "teleport"), "colour": "red", "size": 3}
    # When validated
    _, errors = validate(raw)
    # Then only the unknown keys are named (the rest would be noise)
    assert {e["field"] for e in errors} == {"colour", "size"}


def test_event_validate__not_an_object__refused_as_body():
    _, errors = validate("not an event")
    assert [e["field"] for e in errors] == ["body"]


def test_event_validate__ten_thousand_unknown_keys__refused_bounded_fast():
    # Given an event with 10,000 unknown keys
    raw = {**event("v1"), **{f"k{i}": i for i in range(10_000)}}
    # When validated
    started = time.perf_counter()
    queued, errors = validate(raw)
    elapsed = time.perf_counter() - started
    # Then it is refused as a whole, in one line, without looking at each key
    assert queued is None
    assert errors == [
        {"field": "body", "message": "Too many fields (10004); at most 10 are known."}
    ]
    assert elapsed < 0.05


def test_event_validate__many_bad_utm_values__errors_bounded():
    # Given an event whose context has every utm value wrong (within the key limit) and more
    raw = event("v1", context={"utm": {f"k{i}": "" for i in range(20)}, "url": None})
    # When validated
    _, errors = validate(raw)
    # Then at most 20 lines are answered (core.errors.MAX_SCHEMA_ERRORS)
    assert 0 < len(errors) <= 20


def test_event_schema__openapi__declares_the_rules():
    # Given the schema's JSON schema (what drf-spectacular documents)
    schema = EVENT.json_schema()
    # Then the document carries the rules clients need: required fields, the event types
    assert set(schema["required"]) == {"event_id", "visitor", "type"}
    assert schema["additionalProperties"] is False
    types = schema["properties"]["type"]["enum"]
    assert {"purchase", "custom"} <= set(types)


@pytest.mark.django_db
def test_events__hostile_events_between_valid_ones__rejected_by_index_others_queued(
    client, redis_client
):
    # Given a batch mixing valid events and hostile ones (NUL, deep nesting, 10,000 keys)
    deep: dict = {"leaf": 1}
    for _ in range(900):
        deep = {"k": deep}
    hostile = [
        {**event("v2"), "visitor": "v\x00"},
        {**event("v2"), "properties": {"k": "\x00"}},
        {**event("v2"), "properties": deep},
        {**event("v2"), **{f"k{i}": 1 for i in range(10_000)}},
    ]
    batch = {"events": [event("v1"), *hostile, event("v3")]}
    # When it is posted
    response = post(client, batch)
    # Then each hostile event is refused by its index naming one field, the others are queued
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], [e["field"] for e in r["errors"]]) for r in body["rejected"]] == [
        (1, ["visitor"]),
        (2, ["properties"]),
        (3, ["properties"]),
        (4, ["body"]),
    ]
    assert redis_client.llen(EVENT_QUEUE) == 2


@pytest.mark.django_db
def test_events__huge_properties__413_nothing_queued(client, redis_client):
    # Given an event whose properties exceed the body limit
    batch = {"events": [event("v1", properties={"k": "x" * 3_000_000})]}
    # When posted
    response = post(client, batch)
    # Then the body is refused as too large (4xx in the error shape), nothing queued
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "body"
    assert redis_client.llen(EVENT_QUEUE) == 0


@pytest.mark.django_db
def test_events__many_large_properties_within_the_limit__accepted(client, redis_client):
    # Given properties of 10,000 keys (about 200 kB, within the body limit)
    batch = {"events": [event("v1", properties={f"key{i}": "v" * 10 for i in range(10_000)})]}
    # When posted
    response = post(client, batch)
    # Then it is accepted (properties are free-form; only depth and content are bounded)
    assert response.status_code == 202, response.content
    assert redis_client.llen(EVENT_QUEUE) == 1


@pytest.mark.django_db
def test_events__lone_surrogate__400_names_the_string(client, redis_client):
    # Given a batch whose event holds a lone surrogate escape (not Unicode)
    text = json.dumps({"events": [event("v\ud800")]})  # the escape "\\ud800" in the body
    # When posted
    response = post(client, text)
    # Then it is refused (4xx naming where), nothing queued
    assert response.status_code == 400
    assert "visitor" in response.json()["errors"][0]["field"]
    assert redis_client.llen(EVENT_QUEUE) == 0


@pytest.mark.django_db
def test_events__envelope_with_many_unknown_keys__400_bounded(client, redis_client):
    body = {"events": [event("v1")], **{f"k{i}": 1 for i in range(10_000)}}
    response = post(client, body)
    assert response.status_code == 400
    assert len(response.json()["errors"]) == 1
    assert redis_client.llen(EVENT_QUEUE) == 0


def test_event_validate__default_now_is_aware():
    queued, _ = event_validate(
        {"event_id": str(uuid.uuid4()), "visitor": "v", "type": "search"},
        now=timezone.now(),
        zone=timezone.get_current_timezone(),
    )
    assert queued is not None
    assert datetime.fromisoformat(queued["occurred_at"]).tzinfo is not None


def test_event_validate__context_with_many_keys__refused_before_looking_at_them():
    # Given a context with 10,000 unknown keys
    raw = event("v1", occurred_at=NOW.isoformat(), context={f"k{i}": "x" for i in range(10_000)})
    # When validated
    _, errors = validate(raw)
    # Then the context is refused in one line, naming it
    assert errors == [{"field": "context", "message": "At most 30 keys."}]


@pytest.mark.django_db
def test_events_schema__openapi__request_answers_and_error_shape_documented(client):
    # When the OpenAPI document is read
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    post_ = schema["paths"]["/api/v1/events"]["post"]
    components = schema["components"]["schemas"]
    # Then the body is the batch schema, its events the one Event schema with its rules
    body = post_["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/EventBatch")
    items = components["EventBatch"]["properties"]["events"]["items"]
    event_schema = components[items["$ref"].rsplit("/", 1)[-1]]
    assert set(event_schema["required"]) == {"event_id", "visitor", "type"}
    assert event_schema["additionalProperties"] is False
    assert event_schema["properties"]["visitor"]["maxLength"] == 200
    # And every answer: 202 and 400 in their typed schemas, the other refusals in the error shape
    responses = post_["responses"]
    assert set(responses) >= {"202", "400", "401", "403", "413", "415", "429", "503"}
    ref = "content", "application/json", "schema", "$ref"

    def target(status):
        node = responses[status]
        for part in ref:
            node = node[part]
        return node.rsplit("/", 1)[-1]

    assert (target("202"), target("400")) == ("EventsAccepted", "EventsRefused")
    assert {target(s) for s in ("401", "403", "413", "415", "429", "503")} == {"Error"}


@pytest.mark.django_db
def test_events__answer__rendered_by_orjson_renderer(client, redis_client):
    # Given a valid batch
    response = post(client, {"events": [event("v1")]})
    # Then the answer is rendered by the API's orjson renderer
    assert response.status_code == 202
    assert isinstance(response.accepted_renderer, ORJSONRenderer)
    assert response.content == b'{"accepted":1,"rejected":[]}'


def test_event_validate__declared_and_checked_fields_bad__each_named():
    # Given an event bad in fields pydantic-core checks (visitor, currency) and in fields the
    # event's own function checks (event_id spelling, occurred_at, properties)
    raw = {
        **event("a\x00b", occurred_at="yesterday", event_id="nope"),
        "currency": "euro",
        "properties": {"k": "\x00"},
    }
    # When validated
    queued, errors = validate(raw)
    # Then each is named once, with its message in words
    assert queued is None
    fields = {e["field"]: e["message"] for e in errors}
    assert set(fields) == {"visitor", "currency", "event_id", "occurred_at", "properties"}
    assert fields["visitor"] == "Must not contain control characters."
    assert "ISO 8601" in fields["occurred_at"]


def test_events_validate__batch_with_a_bad_event__others_accepted_in_order():
    # Given a batch whose middle event is refused
    batch = [event("v1", occurred_at=NOW.isoformat()), {"visitor": "v2"}, event("v3")]
    batch[2]["occurred_at"] = NOW.isoformat()
    # When the batch is validated
    accepted, rejected = events_validate(batch, now=NOW, zone=UTC)
    # Then the valid ones are queued in order, the bad one listed by index
    assert [e["visitor"] for e in accepted] == ["v1", "v3"]
    assert [r["index"] for r in rejected] == [1]
    assert {e["field"] for e in rejected[0]["errors"]} == {"event_id", "type"}
    # And a valid batch gives the very same queued events as one by one
    whole, none = events_validate([batch[0], batch[2]], now=NOW, zone=UTC)
    assert none == []
    assert whole == [validate(batch[0])[0], validate(batch[2])[0]]
