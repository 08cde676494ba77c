"""A lone surrogate escape ("\\ud800") in any string of a JSON body: 400 naming its field.

orjson refuses such strings itself, but a body with a run of 19 or more digits is parsed by the
standard library (core.parsers, for exact big integers), which lets them through; the first
UTF-8 encoding of the string (the renderer, a log line, the Redis queue) then raised, and
/api/v1/events answered 500 (seen once in test_api_fuzz.py). Bodies are raw JSON text, as a
client sends them.
"""

from __future__ import annotations

import json

import pytest

from core.forms import PositionedJSONField
from core.parsers import LoneSurrogate, json_loads
from tests.integration.api.test_api_robustness import API_PATHS

BIG = "123456789012345678901234"  # 24 digits: the standard library's parsing path
SURROGATE = "\\ud800"  # the six characters of the escape, as they travel in the body


def _event(**fields: str) -> str:
    base = {
        "event_id": '"6b1c9e3e-1a52-4b4e-9a76-2c4c0a3b0f11"',
        "type": '"page_view"',
        "visitor": '"v1"',
        "occurred_at": '"2026-11-23T10:00:00Z"',
        "properties": '{"a": 1}',
        "context": '{"url": "https://shop.example/"}',
    }
    base.update(fields)
    return "{" + ", ".join(f'"{name}": {text}' for name, text in base.items()) + "}"


EVENT_FIELDS = [
    ({"visitor": f'"v{SURROGATE}"'}, "events[0].visitor"),
    ({"type": f'"{SURROGATE}"'}, "events[0].type"),
    ({"event_id": f'"{SURROGATE}"'}, "events[0].event_id"),
    ({"occurred_at": f'"{SURROGATE}"'}, "events[0].occurred_at"),
    ({"properties": f'{{"a": "x{SURROGATE}", "n": {BIG}}}'}, "events[0].properties.a"),
    (
        {"properties": f'{{"a": [{{"b": "{SURROGATE}"}}], "n": {BIG}}}'},
        "events[0].properties.a[0].b",
    ),
    ({"properties": f'{{"{SURROGATE}": 1, "n": {BIG}}}'}, "events[0].properties"),
    ({"context": f'{{"url": "{SURROGATE}"}}'}, "events[0].context.url"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("big", [True, False], ids=["with-big-integer", "without"])
@pytest.mark.parametrize(("fields", "where"), EVENT_FIELDS)
def test_events__lone_surrogate_in_any_field__400_naming_it(client, fields, where, big):
    # Given an event with a lone surrogate escape in one field, and (or not) a 24-digit integer
    # elsewhere in the batch, which sends the body to the standard library's parser
    extra = f', "properties": {{"n": {BIG}}}' if big else ""
    second = '{"event_id": "x", "type": "page_view", "visitor": "v2"' + extra + "}"
    body = '{"events": [' + _event(**fields) + ", " + second + "]}"

    # When it is posted
    response = client.post("/api/v1/events", body, content_type="application/json")

    # Then the batch is refused with 400 naming the field, not a 500
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0]["field"] == where


@pytest.mark.django_db
@pytest.mark.parametrize("path", API_PATHS)
def test_api__lone_surrogate_with_big_integer__400_naming_field(admin_client, path):
    # Given a body whose visitor holds a lone surrogate and whose "n" is a 24-digit integer
    body = f'{{"visitor": "a{SURROGATE}", "user_id": "u", "purposes": {{}}, "n": {BIG}}}'

    # When any API endpoint receives it (as staff, past the permission checks)
    for method in ("post", "put", "patch"):
        response = getattr(admin_client, method)(path, body, content_type="application/json")

        # Then it is 400 naming `visitor` (or 405 where the method does not exist, 404 where the
        # path's placeholder names nothing), never a 500
        assert response.status_code in (400, 404, 405), (method, response.content[:300])
        if response.status_code == 400:
            assert response.json()["errors"][0]["field"] == "visitor", response.content[:300]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/api/v1/events", "/api/v1/decide", "/api/v1/consent", "/api/v1/identify", "/api/v1/traits"],
)
@pytest.mark.parametrize("big", [True, False], ids=["with-big-integer", "without"])
def test_public_endpoints__lone_surrogate_in_visitor__400_naming_visitor(client, path, big):
    # Given a body with a lone surrogate in `visitor` (and maybe a 24-digit integer)
    number = BIG if big else "1"
    body = f'{{"visitor": "a{SURROGATE}", "user_id": "u", "purposes": {{}}, "n": {number}}}'

    # When one of the site-facing endpoints receives it
    response = client.post(path, body, content_type="application/json")

    # Then it answers 400 naming the field
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0]["field"] == "visitor", response.content[:300]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f'["ok", {{"k": "{SURROGATE}"}}]', "[1].k"),
        (f'"{SURROGATE}"', "body"),
        (f'{{"a": {BIG}, "b": ["{SURROGATE}"]}}', "b[0]"),
        ('{"a": "\\udc00\\ud800"}', "a"),
    ],
)
def test_json_loads__lone_surrogate__lone_surrogate_error_with_path(text, where):
    # Given JSON text with a lone surrogate escape, on either parsing path
    # When it is parsed, Then the error names the path of the string
    with pytest.raises(LoneSurrogate) as caught:
        json_loads(text.encode())
    assert caught.value.field == where


def test_json_loads__surrogate_pair__parsed():
    # Given a valid pair of surrogate escapes (one astral character), When parsed, Then it reads
    assert json_loads(f'{{"a": "\\ud83d\\ude00", "n": {BIG}}}'.encode())["a"] == "\U0001f600"


def test_positioned_json_field__lone_surrogate__invalid_naming_path():
    # Given the admin's JSON field, When it cleans text with a lone surrogate escape
    # Then it is a validation error naming the path (saving it would fail later)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        PositionedJSONField().clean(json.dumps({"title": ["x", "\ud800"]}))
    assert "title[1]" in str(caught.value)
