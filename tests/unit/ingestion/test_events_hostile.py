"""Issue #13 item 6: events with absurd properties or dates are refused by index, naming the
field; the valid ones of the same batch are accepted. Never a 500 that loses the batch."""

from __future__ import annotations

import json

import pytest

from ingestion.queue import EVENT_QUEUE
from tests.factories import event

URL = "/api/v1/events"


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"k": value}
    return value


def _nested_list(depth: int) -> dict:
    value: list = [1]
    for _ in range(depth):
        value = [value]
    return {"k": value}


HOSTILE = {
    "properties nested 40": ("properties", {"properties": _nested(40)}),
    "properties nested 300": ("properties", {"properties": _nested(300)}),
    "properties list nested 300": ("properties", {"properties": _nested_list(300)}),
    "occurred_at year 1 east of UTC": ("occurred_at", {"occurred_at": "0001-01-01T00:00:00+01:00"}),
    "occurred_at year 9999 west of UTC": (
        "occurred_at",
        {"occurred_at": "9999-12-31T23:59:59-14:00"},
    ),
    "occurred_at year 1 naive": ("occurred_at", {"occurred_at": "0001-01-01T00:00:00"}),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "overrides"), HOSTILE.values(), ids=HOSTILE.keys())
def test_events__absurd_event_between_valid_ones__rejected_by_index_others_queued(
    client, redis_client, field, overrides
):
    # Given a batch with a valid event on each side of an absurd one
    batch = {"events": [event("v1"), {**event("v2"), **overrides}, event("v3")]}
    # When it is posted
    response = client.post(URL, data=json.dumps(batch), content_type="application/json")
    # Then the absurd one is refused by its index, naming the field; the others are queued
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1]
    assert {e["field"] for e in body["rejected"][0]["errors"]} == {field}
    queued = [json.loads(item) for item in redis_client.lrange(EVENT_QUEUE, 0, -1)]
    assert len(queued) == 2


@pytest.mark.django_db
def test_events__properties_nested_within_the_limit__accepted(client, redis_client):
    batch = {"events": [{**event("v1"), "properties": _nested(20)}]}
    response = client.post(URL, data=json.dumps(batch), content_type="application/json")
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1
