"""personalization/middleware.py: sessions, users and messages stepped over on decide calls
without a session cookie (keyless or keyed) only; everything else (pages, the admin, staff
sessions) gets all of them."""

from __future__ import annotations

import pytest

from access import services as access_services
from tests.factories import make_placement

URL = "/api/v1/decide"


@pytest.fixture
def hero(db):
    return make_placement("hero")


def _page_machinery(request) -> set[str]:
    """Which of the three middleware's request attributes `request` got."""
    return {name for name in ("session", "user", "_messages") if hasattr(request, name)}


@pytest.mark.django_db
def test_keyless_decide__get_and_post__no_session_user_or_messages(client, hero):
    # Given a page's anonymous, keyless decide calls
    # When it asks by GET and by POST
    answers = [
        client.get(URL, {"placements": "hero", "visitor": "ann"}),
        client.post(URL, {"placements": ["hero"]}, content_type="application/json"),
    ]
    # Then both are answered, without the session, user or message machinery, and still say
    # that the answer varies with cookies (a staff session can change it)
    for answer in answers:
        assert answer.status_code == 200
        assert _page_machinery(answer.wsgi_request) == set()
        assert "Cookie" in answer["Vary"]


@pytest.mark.django_db
def test_keyless_decide__refused_by_drf__same_vary_and_anonymous(client, hero):
    # Given a keyless call the lean path leaves to DRF (an unknown field: the schema refuses it)
    # When it is answered
    body = {"placements": ["hero"], "colour": "red"}
    answer = client.post(URL, body, content_type="application/json")
    # Then DRF refused it as for any anonymous caller (DRF sets its unauthenticated user; no
    # session or messages), with the same Vary
    assert answer.status_code == 400
    assert {e["field"] for e in answer.json()["errors"]} == {"colour"}
    assert _page_machinery(answer.wsgi_request) == {"user"}
    assert not getattr(answer.wsgi_request.user, "is_authenticated", False)
    assert "Cookie" in answer["Vary"]


@pytest.mark.django_db
def test_decide__staff_session__full_middleware_and_explanations(admin_client, hero):
    # Given a staff member signed in to the admin (a session cookie)
    # When they ask decide to explain
    answer = admin_client.get(URL, {"placements": "hero", "visitor": "x", "explain": "1"})
    # Then the session and user were loaded, and the explanation is given
    assert _page_machinery(answer.wsgi_request) == {"session", "user", "_messages"}
    assert "explain" in answer.json()["placements"]["hero"]


@pytest.mark.django_db
def test_decide__with_api_key_without_session__no_session_user_or_messages(client, hero):
    # Given a secret key
    _, raw = access_services.api_key_create(name="srv", kind="secret")
    # When it calls decide (no session cookie)
    answer = client.get(URL, {"placements": "hero"}, HTTP_AUTHORIZATION=f"Bearer {raw}")
    # Then it is answered without the session, user or message machinery
    assert answer.status_code == 200
    assert _page_machinery(answer.wsgi_request) == set()
    assert "Cookie" in answer["Vary"]


@pytest.mark.django_db
def test_decide__keys_required_keyless__refused_by_the_key_policy(client, hero, settings):
    # Given a deployment that requires keys
    settings.MOSAIC_REQUIRE_API_KEY = True
    # When a keyless call arrives
    answer = client.get(URL, {"placements": "hero"})
    # Then the key policy refuses it (through DRF: no session machinery needed for that)
    assert answer.status_code == 401
    assert {e["field"] for e in answer.json()["errors"]} == {"api_key"}
    assert "session" not in _page_machinery(answer.wsgi_request)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/", "/api/v1/decide/"])
def test_other_paths__keyless__full_middleware(client, hero, path):
    # Given a keyless, cookieless request to another endpoint or page
    # When it is answered
    answer = client.get(path)
    # Then all three middleware ran
    assert _page_machinery(answer.wsgi_request) == {"session", "user", "_messages"}
