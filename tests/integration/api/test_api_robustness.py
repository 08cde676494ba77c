"""Every API endpoint, fed junk: a 4xx naming a field (or a 2xx), never a 500.

The endpoint list comes from the URL map, so a new endpoint is covered the day it is added.
"""

from __future__ import annotations

import json
import re

import pytest
from django.urls import URLPattern, get_resolver

JUNK_BODIES = [
    "",
    "{",
    "null",
    "[]",
    "[1, 2]",
    '"text"',
    "42",
    '{"unexpected": true}',
    '{"events": {"a": 1}}',
    '{"events": [null, 1, "x", [], {}]}',
    '{"placements": [null, {}, 3]}',
    '{"placements": ["hero"], "context": "nope"}',
    '{"visitor": {"deep": [1, {"x": null}]}, "purposes": "all"}',
    '{"visitor": "' + "v" * 5000 + '"}',
    '{"user_id": 12, "visitor": 13, "user_token": []}',
    '{"traits": [1], "visitor": "x"}',
    json.dumps(
        {"events": [{"event_id": "x", "visitor": "v", "type": "purchase", "value": "1e400"}]}
    ),
]
JUNK_QUERIES = [
    {},
    {"placements": ",,,"},
    {"placements": "a" * 500},
    {"placements": "hero", "explain": "maybe"},
    {"visitor": "\x00"},
]


def _api_paths() -> list[str]:
    paths = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLPattern):
                if route.startswith("api/v1/"):
                    route = route.replace("<path:visitor>", "some-visitor")
                    # Any other path parameter (an experiment's key...) gets a plain value.
                    paths.append("/" + re.sub(r"<[^>]+>", "some-key", route))
            else:
                walk(pattern.url_patterns, route)

    walk(get_resolver().url_patterns)
    return sorted(set(paths))


API_PATHS = _api_paths()


def _check(response) -> None:
    assert response.status_code < 500, response.content[:500]
    if 400 <= response.status_code < 500 and response.status_code != 405:
        body = response.json()
        assert body["errors"], body
        assert all(e.get("field") and e.get("message") for e in body["errors"]), body


def test_api_paths__url_map__every_api_route_found():
    # Given the URL map, When its API routes are walked, Then every endpoint is fed junk below
    assert set(API_PATHS) >= {
        "/api/v1/decide",
        "/api/v1/events",
        "/api/v1/consent",
        "/api/v1/identify",
        "/api/v1/traits",
        "/api/v1/profiles/some-visitor",
        "/api/v1/profiles/some-visitor/export",
        "/api/v1/experiments",
        "/api/v1/experiments/some-key/results",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_api__junk_body__4xx_never_500(client, path, method):
    for body in JUNK_BODIES:
        response = getattr(client, method)(path, data=body, content_type="application/json")
        _check(response)


@pytest.mark.django_db
@pytest.mark.parametrize("path", API_PATHS)
def test_api__junk_query__4xx_never_500(client, path):
    for query in JUNK_QUERIES:
        _check(client.get(path, query))


@pytest.mark.django_db
@pytest.mark.parametrize("path", API_PATHS)
def test_api__junk_as_staff__4xx_never_500(admin_client, path):
    # Staff pass the permission checks, so their junk reaches the validation itself.
    for body in JUNK_BODIES:
        _check(admin_client.post(path, data=body, content_type="application/json"))
        _check(admin_client.delete(path, data=body, content_type="application/json"))
    for query in JUNK_QUERIES:
        _check(admin_client.get(path, query))


@pytest.mark.django_db
@pytest.mark.parametrize("path", API_PATHS)
def test_api__wrong_content_type__4xx(client, path):
    response = client.post(path, data="a=1", content_type="application/x-www-form-urlencoded")
    _check(response)
