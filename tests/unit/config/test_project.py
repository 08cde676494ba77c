"""Project-level checks: deploy settings, migrations, seed idempotency, docs endpoints."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[3]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy__production_settings__passes():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        MOSAIC_PRODUCTION="true",
        SECRET_KEY=secrets.token_urlsafe(64),
        PSEUDONYMIZATION_KEY="k",
        MOSAIC_IDENTIFY_SECRET="s",
        ALLOWED_HOSTS="mosaic.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production__missing_secret__refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY",)}
    env["MOSAIC_PRODUCTION"] = "true"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_makemigrations__models_as_migrated__no_changes():
    result = _manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_seed_demo__twice__changes_nothing():
    from content.models import Variant
    from profiles.models import Event, Profile

    # Given a seeded demo
    call_command("seed_demo", "--visitors", "20")
    counts = (Event.objects.count(), Profile.objects.count(), Variant.objects.count())
    # When it is seeded again, Then nothing is added
    call_command("seed_demo", "--visitors", "20")
    assert (Event.objects.count(), Profile.objects.count(), Variant.objects.count()) == counts
    assert counts[0] > 20


@pytest.mark.django_db
def test_seed_demo__personas__get_their_content(client):
    call_command("seed_demo", "--visitors", "5")

    def answer(visitor):
        return client.get("/api/v1/decide", {"placements": "hero", "visitor": visitor}).json()[
            "placements"
        ]["hero"]

    def hero(visitor):
        return answer(visitor)["variant"]

    # A new visitor is in the demo's running hero A/B test: the arm its pseudonym hashes to
    new = answer("demo-new")
    assert new["experiment"]["key"] == "hero-bold-copy"
    assert (
        new["variant"] == {"control": "welcome", "bold": "welcome-bold"}[new["experiment"]["arm"]]
    )
    assert hero("demo-loyal") == "loyal-thanks"
    assert hero("demo-cart") == "cart-reminder"
    # The RFM segment's content: a customer whose only order is the oldest of the base
    assert hero("demo-lapsed") == "win-back"
    # And the cart abandoner (marketing consent) entering was queued for the demo's webhook
    from segments.models import WebhookDelivery

    delivery = WebhookDelivery.objects.get(trigger__segment__key="cart-abandoners")
    assert delivery.trigger.url.endswith("/demo/webhook-echo")
    assert delivery.event == "entered"


@pytest.mark.django_db
def test_demo_page__snippet_page_and_server_page__render_placements(client):
    call_command("seed_demo", "--visitors", "5")
    # The storefront integrates with the snippet: placements hold the page's default markup.
    page = client.get("/", {"visitor": "demo-jazz"})
    assert page.status_code == 200
    assert b'src="/static/mosaic/mosaic.js"' in page.content
    for key in (b"hero", b"promo-bar", b"recs"):
        assert b'data-mosaic-placement="' + key + b'"' in page.content
    assert page.cookies["mosaic_vid"].value == "demo-jazz"
    # The server-rendered variant decides with the template tag, from the visitor cookie.
    server = client.get("/demo/server")
    assert server.status_code == 200
    assert b"Picked for jazz lovers" in server.content
    assert b'data-mosaic-reason="targeted:jazz-picks"' in server.content


@pytest.mark.django_db
def test_openapi__schema_and_docs__served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/decide" in schema.content
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_healthz__database_and_redis_up__all_ok(client):
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_urls__decide_tried_first__no_other_view_for_its_path():
    # The hot path is the first pattern; putting it there changes no URL's view: no other
    # pattern takes its path, and it takes no other path.
    from django.urls import URLResolver, get_resolver
    from django.urls.exceptions import Resolver404
    from django.urls.resolvers import RegexPattern

    from config import urls

    first, *others = urls.urlpatterns
    assert first.name == "api-decide"
    with pytest.raises(Resolver404):
        URLResolver(RegexPattern(r"^/"), others).resolve("/api/v1/decide")
    assert get_resolver().resolve("/api/v1/decide").url_name == "api-decide"
    for path in ["api/v1/decide/", "api/v1/decides", "api/v1/decide/x", "api/v1/", ""]:
        assert first.resolve(path) is None
