"""API keys: hashing, publishable limits, origins, secret keys, revocation, rate limits, admin."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.test import override_settings
from rest_framework.exceptions import APIException
from rest_framework.test import APIRequestFactory

from access import services
from access.models import ApiKey
from access.permissions import IsSecretKeyOrStaff
from core.pseudonym import pseudonymize
from profiles.models import Profile
from tests.factories import event

EVENTS = "/api/v1/events"
TRAITS = "/api/v1/traits"
SHOP = "https://shop.example"


def post(client, url, body, key=None, **extra):
    if key is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client.post(url, data=json.dumps(body), content_type="application/json", **extra)


def fields(response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


@pytest.mark.django_db
def test_api_key__created__raw_key_never_stored():
    # Given a new secret key
    api_key, raw = services.api_key_create(name="server", kind="secret")
    # Then only its SHA-256 digest and a short prefix are stored
    row = ApiKey.objects.values().get(pk=api_key.pk)
    assert raw not in json.dumps(row, default=str)
    assert row["hashed_key"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(row["prefix"])
    assert len(row["prefix"]) < len(raw) / 3
    assert raw.startswith("mk_sec_")


@pytest.mark.django_db
def test_access__no_key_not_required__events_still_accepted(client):
    # Given the default MOSAIC_REQUIRE_API_KEY=false, When events come without a key
    response = post(client, EVENTS, {"events": [event("v1")]})
    # Then they are accepted as before keys existed
    assert response.status_code == 202


@pytest.mark.django_db
@override_settings(MOSAIC_REQUIRE_API_KEY=True)
def test_access__no_key_when_required__401_names_api_key(client):
    response = post(client, EVENTS, {"events": [event("v1")]})
    assert response.status_code == 401
    assert fields(response) == {"api_key"}
    assert "Bearer" in response["WWW-Authenticate"]


@pytest.mark.django_db
@override_settings(MOSAIC_REQUIRE_API_KEY=True)
def test_access__publishable_key__events_and_decide_allowed(client):
    # Given a publishable key and keys required
    _, raw = services.api_key_create(name="web", kind="publishable", allowed_origins=[SHOP])
    # When the browser endpoints are called with it (X-Mosaic-Key header for events)
    events = post(client, EVENTS, {"events": [event("v1")]}, HTTP_X_MOSAIC_KEY=raw)
    decide = post(client, "/api/v1/decide", {"placements": ["hero"]}, key=raw)
    # Then they answer normally
    assert events.status_code == 202, events.content
    assert decide.status_code == 200, decide.content


@pytest.mark.django_db
def test_access__publishable_key__cannot_set_traits_403(client):
    _, raw = services.api_key_create(name="web", kind="publishable")
    response = post(client, TRAITS, {"visitor": "v1", "traits": {"plan": "pro"}}, key=raw)
    assert response.status_code == 403
    assert fields(response) == {"api_key"}


@pytest.mark.django_db
def test_access__publishable_key__is_secret_or_staff_refuses_it():
    # Given the permission other apps put on export/erase-like endpoints
    _, publishable = services.api_key_create(name="web", kind="publishable")
    _, secret = services.api_key_create(name="srv", kind="secret")
    from access.authentication import ApiKeyAuthentication

    def allowed(raw: str) -> bool:
        request = APIRequestFactory().get("/api/v1/profiles/v1/export", HTTP_X_MOSAIC_KEY=raw)
        from rest_framework.request import Request

        drf_request = Request(request, authenticators=[ApiKeyAuthentication()])
        try:
            return IsSecretKeyOrStaff().has_permission(drf_request, None)
        except APIException:  # a refusal (401/403); any other exception is a bug and propagates
            return False

    # Then only the secret key passes
    assert allowed(secret) is True
    assert allowed(publishable) is False


@pytest.mark.django_db
def test_access__publishable_key_wrong_origin__403_names_origin(client):
    _, raw = services.api_key_create(name="web", kind="publishable", allowed_origins=[SHOP])
    response = post(
        client, EVENTS, {"events": [event("v1")]}, key=raw, HTTP_ORIGIN="https://evil.example"
    )
    assert response.status_code == 403
    assert fields(response) == {"origin"}


@pytest.mark.django_db
def test_access__publishable_key_allowed_origin__accepted_with_cors_header(client):
    # Given a publishable key for the shop's origin (not in CORS_ALLOWED_ORIGINS)
    _, raw = services.api_key_create(name="web", kind="publishable", allowed_origins=[SHOP + "/"])
    # When the shop's page posts events
    response = post(client, EVENTS, {"events": [event("v1")]}, key=raw, HTTP_ORIGIN=SHOP)
    # Then the request is accepted and CORS allows that origin, and only that one
    assert response.status_code == 202, response.content
    assert response["Access-Control-Allow-Origin"] == SHOP
    other = client.options(
        EVENTS, HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert "Access-Control-Allow-Origin" not in other
    preflight = client.options(
        EVENTS,
        HTTP_ORIGIN=SHOP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-mosaic-key",
    )
    assert preflight["Access-Control-Allow-Origin"] == SHOP
    assert "x-mosaic-key" in preflight["Access-Control-Allow-Headers"]


@pytest.mark.django_db
def test_access__secret_key__may_set_traits(client):
    _, raw = services.api_key_create(name="srv", kind="secret")
    response = post(client, TRAITS, {"visitor": "v1", "traits": {"plan": "pro"}}, key=raw)
    assert response.status_code == 200, response.content
    assert Profile.objects.get(key=pseudonymize("v1")).traits == {"plan": "pro"}


@pytest.mark.django_db
def test_access__unknown_key__401(client):
    response = post(client, EVENTS, {"events": [event("v1")]}, key="mk_sec_nope")
    assert response.status_code == 401
    assert fields(response) == {"api_key"}


@pytest.mark.django_db
def test_access__revoked_key__401(client):
    # Given a key that worked
    api_key, raw = services.api_key_create(name="srv", kind="secret")
    assert post(client, EVENTS, {"events": [event("v1")]}, key=raw).status_code == 202
    # When it is revoked
    services.api_key_revoke(api_key=api_key)
    # Then it is refused at once
    response = post(client, EVENTS, {"events": [event("v1")]}, key=raw)
    assert response.status_code == 401
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None


@pytest.mark.django_db
def test_access__over_rate_limit__429_with_retry_after(client, redis_client, frozen_rate_window):
    # Given a key allowed 3 requests per minute, and a clock 30 s into the current minute
    api_key, raw = services.api_key_create(name="srv", kind="secret", rate_limit_per_minute=3)
    # When it makes 4 requests in that window
    answers = [post(client, EVENTS, {"events": [event("v1")]}, key=raw) for _ in range(4)]
    # Then the 4th is refused with the seconds to the next window; the 3 admitted calls are
    # counted in the real Redis (the 4th was refused from this process's count, asking nothing)
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert answers[3]["Retry-After"] == "30"
    assert fields(answers[3]) == {"api_key"}
    window = int(frozen_rate_window // 60)
    assert redis_client.keys(f"mosaic:ratelimit:{{{api_key.pk}}}:*") == [
        f"mosaic:ratelimit:{{{api_key.pk}}}:{window}".encode()
    ]
    assert int(redis_client.get(f"mosaic:ratelimit:{{{api_key.pk}}}:{window}")) == 3


@pytest.mark.django_db
def test_access__last_used__recorded(client):
    api_key, raw = services.api_key_create(name="srv", kind="secret")
    post(client, EVENTS, {"events": [event("v1")]}, key=raw)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


@pytest.mark.django_db
def test_admin__create_key__shown_once_then_revoked(admin_client):
    # Given an admin creating a publishable key
    response = admin_client.post(
        "/admin/access/apikey/add/",
        {
            "name": "web",
            "kind": "publishable",
            "allowed_origins": "https://shop.example\nhttp://localhost:8000",
            "rate_limit_per_minute": 100,
        },
        follow=True,
    )
    # Then the full key appears once, in a message, and only its digest is stored
    messages = [str(m) for m in response.context["messages"]]
    shown = next(m for m in messages if "mk_pub_" in m)
    raw = shown.rsplit(" ", 1)[-1]
    api_key = ApiKey.objects.get()
    assert api_key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert api_key.allowed_origins == ["http://localhost:8000", "https://shop.example"]
    listing = admin_client.get("/admin/access/apikey/").content.decode()
    assert api_key.prefix in listing
    assert raw not in listing
    # When the revoke action runs
    admin_client.post(
        "/admin/access/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
        follow=True,
    )
    # Then the key is inactive
    api_key.refresh_from_db()
    assert not api_key.is_active
    assert api_key.revoked_at is not None


@pytest.mark.django_db
def test_admin__bad_origin__form_error(admin_client):
    response = admin_client.post(
        "/admin/access/apikey/add/",
        {
            "name": "web",
            "kind": "publishable",
            "allowed_origins": "not a url",
            "rate_limit_per_minute": 1,
        },
    )
    assert response.status_code == 200
    assert "allowed_origins" in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()
