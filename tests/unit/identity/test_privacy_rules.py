"""Issue #13 item 11: seed_demo works under opt-in; under opt-in, identify and traits store
nothing for a visitor without personalization consent; the export includes the audit entries
that name the visitor."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from access import services as access_services
from core.pseudonym import pseudonymize
from profiles.models import AuditEntry, Profile


@pytest.mark.django_db(transaction=True)
def test_seed_demo__opt_in_policy__seeds_without_error(settings):
    settings.MOSAIC_CONSENT_DEFAULT = "opt-in"
    call_command("seed_demo", "--visitors", "5")
    # Every fictional visitor is seeded with the consent its stored events need (analytics); the
    # personas have personalization consent too, so the demo personalizes (the A/B test's
    # simulated traffic is counted, never personalized)
    from demo.views import DEMO_PERSONAS

    profiles = list(Profile.objects.all())
    assert len(profiles) >= 5
    assert all(p.consent.get("analytics") is True for p in profiles)
    persona_keys = {pseudonymize(key) for key, _label, _hint in DEMO_PERSONAS}
    personas = [p for p in profiles if p.key in persona_keys]
    assert personas
    assert all(p.consent.get("personalization") is True for p in personas)


def _post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_identify_and_traits__opt_in_without_consent__nothing_stored(client, settings):
    # Given the opt-in policy and a visitor who never chose, called by a trusted server
    settings.MOSAIC_CONSENT_DEFAULT = "opt-in"
    _, raw = access_services.api_key_create(name="srv", kind="secret")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    # When the server identifies the visitor and sets a trait
    identified = client.post(
        "/api/v1/identify",
        data=json.dumps({"visitor": "silent", "user_id": "u-1"}),
        content_type="application/json",
        **auth,
    )
    traits = client.post(
        "/api/v1/traits",
        data=json.dumps({"visitor": "silent", "traits": {"tier": "gold"}}),
        content_type="application/json",
        **auth,
    )
    # Then both answer that nothing was stored, and no profile exists
    assert identified.json() == {"identified": False, "merged": 0, "reason": "no_consent"}
    assert traits.json() == {"traits": {}, "stored": False, "reason": "no_consent"}
    assert not Profile.objects.filter(key=pseudonymize("silent")).exists()


@pytest.mark.django_db
def test_identify_and_traits__opt_in_with_consent__stored(client, settings):
    settings.MOSAIC_CONSENT_DEFAULT = "opt-in"
    _, raw = access_services.api_key_create(name="srv", kind="secret")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    body = {"visitor": "yes", "purposes": {"personalization": True}}
    assert _post(client, "/api/v1/consent", body).status_code == 201
    response = client.post(
        "/api/v1/traits",
        data=json.dumps({"visitor": "yes", "traits": {"tier": "gold"}}),
        content_type="application/json",
        **auth,
    )
    assert response.json() == {"traits": {"tier": "gold"}}
    assert Profile.objects.get(key=pseudonymize("yes")).traits == {"tier": "gold"}


@pytest.mark.django_db
def test_export__audit_entries_naming_the_visitor__included(admin_client):
    # Given a visitor whose consent changes were audited, and another visitor's entry
    for visitor in ("ann", "bob"):
        body = {"visitor": visitor, "purposes": {"analytics": True}}
        assert _post(admin_client, "/api/v1/consent", body).status_code == 201
    # When ann's data is exported
    data = admin_client.get("/api/v1/profiles/ann/export").json()
    # Then the audit entries about her are in it, and only hers
    assert [e["action"] for e in data["audit_entries"]] == ["consent_change"]
    subjects = set(
        AuditEntry.objects.filter(action="consent_change").values_list("subject", flat=True)
    )
    assert subjects == {pseudonymize("ann"), pseudonymize("bob")}
