"""Merged-away visitor ids (identify) keep working everywhere: ingestion, cache, erasure."""

from __future__ import annotations

import json

import pytest

from access import services as access_services
from core.pseudonym import pseudonymize
from identity.views import user_token_for
from profiles import services as profile_services
from profiles.models import Event, Profile
from profiles.selectors import profile_cache_key
from tests.factories import event, store


@pytest.fixture
def merged(client):
    """'phone' (older) and 'laptop' (newer) of user u-1, merged into the phone's profile."""
    store(events=[event("phone", occurred_at="2026-01-01T00:00:00+00:00")])
    store(events=[event("laptop")])
    for visitor in ("laptop", "phone"):
        token = user_token_for("u-1", visitor)
        body = {"visitor": visitor, "user_id": "u-1", "user_token": token}
        response = client.post(
            "/api/v1/identify", json.dumps(body), content_type="application/json"
        )
        assert response.status_code == 200, response.content
    return Profile.objects.get(key=pseudonymize("phone"))


@pytest.mark.django_db
def test_ingest__event_under_merged_visitor_id__lands_on_survivor(merged):
    # When the merged-away visitor id keeps sending events
    store(events=[event("laptop", "purchase", value="4.00")])
    # Then they are stored on the surviving profile, and no new profile appears
    assert Profile.objects.count() == 1
    assert Event.objects.filter(profile=merged, type="purchase").count() == 1


@pytest.mark.django_db
def test_profile_cache_write__survivor_changed__alias_document_follows(merged, redis_client):
    # When the survivor's profile changes (a trait) and its document is rewritten
    profile_services.profile_set_traits(visitor="phone", traits={"tier": "gold"})
    # Then the merged-away id reads the same, fresh document
    alias_doc = json.loads(redis_client.get(profile_cache_key(pseudonymize("laptop"))))
    assert alias_doc["traits"]["tier"] == "gold"


@pytest.mark.django_db
def test_erase__survivor__alias_document_gone_too(merged, admin_client, redis_client):
    response = admin_client.delete("/api/v1/profiles/phone")
    assert response.status_code == 200, response.content
    assert redis_client.get(profile_cache_key(pseudonymize("laptop"))) is None
    assert redis_client.get(profile_cache_key(pseudonymize("phone"))) is None
    assert not Profile.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "expected"), [("secret", 200), ("publishable", 403)])
def test_export__api_key_kind__secret_only(client, kind, expected):
    # Given a stored visitor and a key of each kind
    store(events=[event("ann")])
    _, raw = access_services.api_key_create(name=kind, kind=kind)
    # When the key asks for the visitor's export, Then only the secret key gets it
    response = client.get("/api/v1/profiles/ann/export", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == expected, response.content


@pytest.mark.django_db
def test_export__no_key_no_staff__refused_even_in_demo_mode(client, settings):
    # Given keys not required (the demo mode) and a stored visitor
    settings.MOSAIC_REQUIRE_API_KEY = False
    store(events=[event("ann")])
    # When an anonymous caller exports or erases, Then both are refused and nothing is erased
    assert client.get("/api/v1/profiles/ann/export").status_code in (401, 403)
    assert client.delete("/api/v1/profiles/ann").status_code in (401, 403)
    assert Profile.objects.filter(key=pseudonymize("ann")).exists()
