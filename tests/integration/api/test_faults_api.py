"""Issue #13 item 14: identify, traits and consent answer 503 with Retry-After, in the error
shape, when Redis or the database is down; and nothing is committed that the caller was told
failed (traits with Redis down used to commit while answering an error)."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from core.pseudonym import pseudonymize
from profiles import services as profile_services
from profiles.models import Profile

DEAD_REDIS = "redis://127.0.0.1:1/0"


def _post(client, url, body, **extra):
    return client.post(url, data=json.dumps(body), content_type="application/json", **extra)


@pytest.mark.django_db
def test_traits__redis_down__503_and_traits_not_committed(admin_client, settings):
    # Given a visitor with a trait, and Redis then unreachable
    profile_services.profile_set_traits(visitor="ann", traits={"tier": "silver"})
    settings.REDIS_URL = DEAD_REDIS
    # When the server sets a new value
    response = _post(admin_client, "/api/v1/traits", {"visitor": "ann", "traits": {"tier": "gold"}})
    # Then it is told to retry, and the database still holds the old value (decide's document,
    # which could not be written, agrees with it)
    assert response.status_code == 503
    assert "Retry-After" in response
    assert response.json()["errors"][0]["field"]
    assert Profile.objects.get(key=pseudonymize("ann")).traits == {"tier": "silver"}


@pytest.fixture
def server_key(transactional_db) -> str:
    from access import services as access_services

    _, raw = access_services.api_key_create(name="srv", kind="secret")
    return raw


@pytest.fixture
def database_down(server_key):
    """The database unreachable for the requests of the test (its connection re-opened to a
    database that does not exist), restored afterwards."""
    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = (
        "/nonexistent-dir/mosaic-down.sqlite3"
        if (connection.vendor == "sqlite")
        else "mosaic_database_that_does_not_exist"
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/identify", {"visitor": "v1", "user_id": "u1"}),
        ("/api/v1/traits", {"visitor": "v1", "traits": {"tier": "gold"}}),
        ("/api/v1/consent", {"visitor": "v1", "purposes": {"analytics": True}}),
    ],
)
def test_write_endpoints__database_down__503_with_retry_after(
    client, server_key, database_down, url, body
):
    # When the site's server calls a write endpoint while the database is unreachable
    response = _post(client, url, body, HTTP_AUTHORIZATION=f"Bearer {server_key}")
    # Then the answer is the error shape with 503 and Retry-After, not an HTML 500
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"]
    assert response.json()["errors"][0]["field"] == "database"
