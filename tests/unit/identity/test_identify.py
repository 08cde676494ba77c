"""POST /api/v1/identify: user tokens, linking, merge into the older profile, aliases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from access import services as access_services
from core.pseudonym import pseudonymize
from identity.models import VisitorAlias
from identity.views import user_token_for
from personalization.visitors import visitor_load
from profiles.models import ConsentRecord, Event, Profile
from tests.factories import event, store

URL = "/api/v1/identify"


def post(client, body, **extra):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **extra)


def fields(response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


def days_ago(n: int) -> str:
    return (datetime.now(UTC) - timedelta(days=n)).isoformat()


def profile_of(visitor: str) -> Profile:
    return Profile.objects.get(key=pseudonymize(visitor))


def with_history(visitor: str, *, days: int, consent: dict[str, bool], traits: dict) -> Profile:
    store(
        events=[event(visitor, occurred_at=days_ago(days)), event(visitor, occurred_at=days_ago(1))]
    )
    profile = profile_of(visitor)
    profile.consent = consent
    profile.traits = traits
    profile.save()
    ConsentRecord.objects.create(profile=profile, purposes=consent, source="test")
    return profile


@pytest.mark.django_db
def test_identify__browser_without_token__403(client):
    # Given no key (the demo mode counts as a browser), When identify has no user_token
    response = post(client, {"visitor": "anon-1", "user_id": "u-1"})
    # Then it is refused naming user_token, and nothing is linked
    assert response.status_code == 403
    assert fields(response) == {"user_token"}
    assert not Profile.objects.filter(user_key=pseudonymize("u-1")).exists()


@pytest.mark.django_db
def test_identify__wrong_token__403(client):
    token = user_token_for("someone-else", "anon-1")
    response = post(client, {"visitor": "anon-1", "user_id": "u-1", "user_token": token})
    assert response.status_code == 403
    assert fields(response) == {"user_token"}


@pytest.mark.django_db
def test_identify__valid_token__links_pseudonymous_user_key(client):
    # Given a token the site's server computed for u-1
    body = {"visitor": "anon-1", "user_id": "u-1", "user_token": user_token_for("u-1", "anon-1")}
    # When the browser identifies with it (publishable key from the allowed origin)
    _, raw = access_services.api_key_create(
        name="web", kind="publishable", allowed_origins=["https://shop.example"]
    )
    response = post(client, body, HTTP_X_MOSAIC_KEY=raw, HTTP_ORIGIN="https://shop.example")
    # Then the profile carries the keyed hash of the user id, never the raw id
    assert response.status_code == 200, response.content
    assert response.json() == {"identified": True, "merged": 0}
    profile = profile_of("anon-1")
    assert profile.user_key == pseudonymize("u-1")
    assert "u-1" not in json.dumps([profile.key, profile.user_key, profile.traits])


@pytest.mark.django_db
def test_identify__secret_key_without_token__linked(client):
    # Given a server calling with its secret key, When it identifies without a user_token
    _, raw = access_services.api_key_create(name="srv", kind="secret")
    response = post(
        client, {"visitor": "anon-1", "user_id": "u-1"}, HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    # Then the visitor is linked to the user all the same
    assert response.status_code == 200, response.content
    assert response.json() == {"identified": True, "merged": 0}
    assert profile_of("anon-1").user_key == pseudonymize("u-1")


@pytest.mark.django_db
def test_identify__two_visitors_of_one_user__merged_into_older(client):
    # Given an older profile (phone) and a newer one (laptop) with events, consent and traits
    older = with_history(
        "phone",
        days=30,
        consent={"analytics": True, "personalization": True},
        traits={"plan": "free", "city": "Lyon"},
    )
    newer = with_history(
        "laptop",
        days=5,
        consent={"analytics": True, "personalization": False, "marketing": True},
        traits={"plan": "pro"},
    )
    # When the newer visitor is identified first, then the older one, as the same user
    first = post(
        client,
        {"visitor": "laptop", "user_id": "u-1", "user_token": user_token_for("u-1", "laptop")},
    )
    second = post(
        client, {"visitor": "phone", "user_id": "u-1", "user_token": user_token_for("u-1", "phone")}
    )
    # Then the older profile survives with every event and the consent history of both
    assert first.json()["merged"] == 0
    assert second.json() == {"identified": True, "merged": 1}
    assert not Profile.objects.filter(pk=newer.pk).exists()
    survivor = Profile.objects.get(pk=older.pk)
    assert Event.objects.filter(profile=survivor).count() == 4
    assert survivor.aggregates["event_count"] == 4
    assert set(ConsentRecord.objects.filter(profile=survivor).values_list("source", flat=True)) == {
        "test",
        "identify:merge",
    }
    # And the newer profile's trait wins; the more restrictive consent wins per purpose
    assert survivor.traits == {"plan": "pro", "city": "Lyon"}
    assert survivor.consent == {"analytics": True, "personalization": False, "marketing": True}
    # And the merged-away visitor id now resolves (one cache GET) to the survivor's document
    visitor, status = visitor_load(visitor_id="laptop")
    assert status == "found"
    assert visitor.profile["traits"] == {"plan": "pro", "city": "Lyon"}
    assert visitor.personalization_allowed is False
    assert VisitorAlias.objects.get(alias_key=pseudonymize("laptop")).profile_id == older.pk


@pytest.mark.django_db
def test_identify__repeated__idempotent(client):
    body = {"visitor": "anon-1", "user_id": "u-1", "user_token": user_token_for("u-1", "anon-1")}
    assert post(client, body).json() == {"identified": True, "merged": 0}
    assert post(client, body).json() == {"identified": True, "merged": 0}
    assert Profile.objects.filter(user_key=pseudonymize("u-1")).count() == 1


@pytest.mark.django_db
def test_identify__visitor_already_another_user__409(client):
    post(
        client,
        {"visitor": "anon-1", "user_id": "u-1", "user_token": user_token_for("u-1", "anon-1")},
    )
    response = post(
        client,
        {"visitor": "anon-1", "user_id": "u-2", "user_token": user_token_for("u-2", "anon-1")},
    )
    assert response.status_code == 409
    assert fields(response) == {"visitor"}


@pytest.mark.django_db
def test_identify__old_visitor_id_used_after_merge__events_reach_survivor(client):
    # Given laptop merged into phone
    survivor = with_history("phone", days=30, consent={}, traits={})
    with_history("laptop", days=5, consent={}, traits={})
    for visitor in ("phone", "laptop"):
        token = user_token_for("u-1", visitor)
        post(client, {"visitor": visitor, "user_id": "u-1", "user_token": token})
    # When the laptop keeps sending events under its old id, then identifies again
    store(events=[event("laptop")])
    response = post(client, {"visitor": "laptop", "user_id": "u-1", "user_token": token})
    # Then the events went straight to the survivor: no stray profile, nothing left to merge
    assert response.json()["merged"] == 0
    assert Profile.objects.count() == 1
    assert Event.objects.filter(profile=survivor).count() == 5


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u-1"}, "visitor"),
        ({"visitor": "v"}, "user_id"),
        ({"visitor": "", "user_id": "u-1"}, "visitor"),
        ({"visitor": "v", "user_id": "u-1", "user_token": "zz"}, "user_token"),
        ({"visitor": "v", "user_id": "u-1", "colour": "red"}, "colour"),
        ([1], "body"),
    ],
)
def test_identify__bad_input__400_names_field(client, body, field):
    response = post(client, body)
    assert response.status_code == 400
    assert field in fields(response)


@pytest.mark.django_db
def test_identify__token_for_own_visitor_used_on_another__403_victim_untouched(client):
    # Given a victim's visitor with history, and an attacker holding a valid token the site
    # issued for the attacker's own account and own browser
    victim = with_history("victim-visitor", days=10, consent={}, traits={"tier": "gold"})
    attacker_token = user_token_for("attacker", "attacker-visitor")
    assert post(
        client,
        {"visitor": "attacker-visitor", "user_id": "attacker", "user_token": attacker_token},
    ).json() == {"identified": True, "merged": 0}
    # When the attacker links the victim's visitor id to the attacker's account with that token
    response = post(
        client, {"visitor": "victim-visitor", "user_id": "attacker", "user_token": attacker_token}
    )
    # Then it is refused, the victim's profile is not merged away, and the victim can still
    # identify as themselves (no 409 lock-out)
    assert response.status_code == 403
    assert fields(response) == {"user_token"}
    victim.refresh_from_db()
    assert not victim.user_key
    own = user_token_for("victim", "victim-visitor")
    response = post(client, {"visitor": "victim-visitor", "user_id": "victim", "user_token": own})
    assert response.status_code == 200


@pytest.mark.django_db
def test_identify__server_with_secret_key__no_token_needed_as_before(client):
    _, raw = access_services.api_key_create(name="srv", kind="secret")
    response = post(
        client,
        {"visitor": "anon-9", "user_id": "u-9"},
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.json() == {"identified": True, "merged": 0}
