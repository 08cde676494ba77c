"""Who may do what through the management API: each role's permissions (a staff session's
groups, a secret key's role), publishable keys and anonymous callers never."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.factories import make_variant

from .conftest import ROLES

# Reads and creates per role and resource: (may view, may add).
EXPECTED = {
    "Editor": {"block-types": (True, True), "placements": (True, True), "variants": (True, True)},
    "Analyst": {
        "block-types": (False, False),
        "placements": (True, False),
        "variants": (True, False),
    },
    "Experimenter": {
        "block-types": (False, False),
        "placements": (True, False),
        "variants": (True, False),
    },
    "Privacy officer": {
        "block-types": (False, False),
        "placements": (False, False),
        "variants": (False, False),
    },
    "Admin": {"block-types": (True, True), "placements": (True, True), "variants": (True, True)},
    None: {"block-types": (False, False), "placements": (False, False), "variants": (False, False)},
}

NEW = {
    "block-types": {"key": "card", "name": "Card", "template": "<p>card</p>"},
    "placements": {"key": "promo", "name": "Promo"},
    "variants": {"placement": "hero", "key": "new", "name": "New", "template": "<p>n</p>"},
}


@pytest.mark.parametrize("role", [*ROLES, None])
@pytest.mark.parametrize("resource", ["block-types", "placements", "variants"])
def test_role__list_and_create__allowed_exactly_by_its_permissions(
    role_client, hero, banner, role, resource
):
    # Given a staff user holding only `role`
    client = role_client(role)
    may_view, may_add = EXPECTED[role][resource]
    # When it lists and creates
    listed = client.get(f"/api/v1/{resource}")
    created = client.post(f"/api/v1/{resource}", NEW[resource], format="json")
    # Then each is allowed or refused (403 naming the permission) as the role says
    assert listed.status_code == (200 if may_view else 403)
    assert created.status_code == (201 if may_add else 403), created.content
    if not may_add:
        assert created.json()["errors"][0]["field"] == "permission"


@pytest.mark.parametrize(
    ("role", "read", "change", "delete"),
    [
        ("Editor", 200, 200, 204),
        ("Analyst", 200, 403, 403),
        ("Experimenter", 200, 403, 403),
        ("Privacy officer", 403, 403, 403),
        ("Admin", 200, 200, 204),
    ],
)
def test_role__variant_read_change_delete_preview(
    role_client, editor_api, hero, role, read, change, delete
):
    variant = make_variant(hero, "spare")
    url = f"/api/v1/variants/{variant.pk}"
    etag = editor_api.get(url)["ETag"]
    client = role_client(role)
    assert client.get(url).status_code == read
    assert client.post(f"{url}/preview", {}, format="json").status_code == read
    patched = client.patch(url, {"priority": 3}, format="json", HTTP_IF_MATCH=etag)
    assert patched.status_code == change
    etag = editor_api.get(url)["ETag"]
    assert client.delete(url, HTTP_IF_MATCH=etag).status_code == delete


@pytest.mark.parametrize(
    ("role", "status"),
    [("Editor", 201), ("Analyst", 403), ("Experimenter", 403), ("Admin", 201), (None, 201)],
)
def test_secret_key__role__decides_like_a_staff_role(key_client, hero, role, status):
    # Given a secret key with a role (None: a key issued without one, which holds every right)
    client = key_client("secret", role)
    # When it creates a variant
    response = client.post("/api/v1/variants", NEW["variants"], format="json")
    # Then its role decides; the revision names the key, never a person
    assert response.status_code == status, response.content
    if status == 201:
        from content.models import Variant

        author = Variant.objects.get(key="new").revisions.get().author
        assert author.startswith("api-key:mk_sec_")


def test_publishable_key__management_api__403(key_client, hero):
    client = key_client("publishable")
    assert client.get("/api/v1/placements").status_code == 403
    assert client.post("/api/v1/placements", NEW["placements"], format="json").status_code == 403


@override_settings(MOSAIC_REQUIRE_API_KEY=False)
def test_anonymous__management_api__403_even_without_required_keys(client, hero):
    response = client.get("/api/v1/placements")
    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == "api_key"


@pytest.mark.parametrize(
    ("role", "status"),
    [("Privacy officer", 404), ("Admin", 404), ("Editor", 403), ("Analyst", 403)],
)
def test_role__privacy_export__only_privacy_officer_and_admin(role_client, db, role, status):
    # 404: allowed, and there is no such visitor; 403: refused before looking
    response = role_client(role).get("/api/v1/profiles/nobody/export")
    assert response.status_code == status, response.content
