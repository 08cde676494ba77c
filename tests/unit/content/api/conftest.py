"""Callers of the management API: one staff user per role, secret keys with and without a role,
a publishable key; and a small content set (a block type, a placement with a default)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from access import services as key_services
from content.models import BlockType
from tests.factories import make_placement

ROLES = ["Editor", "Analyst", "Experimenter", "Privacy officer", "Admin"]


@pytest.fixture
def role_client(db, django_user_model):
    """A function: an API client signed in as a staff user holding only `role` (None: a staff
    user with no role)."""

    def make(role: str | None) -> APIClient:
        name = (role or "norole").lower().replace(" ", "-")
        if django_user_model.objects.filter(username=name).exists():
            name += f"-{django_user_model.objects.count()}"
        # No password (no slow hash): the client signs in with force_login.
        user = django_user_model.objects.create_user(name, password=None, is_staff=True)
        if role:
            user.groups.add(Group.objects.get(name=role))
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def editor_api(role_client) -> APIClient:
    return role_client("Editor")


@pytest.fixture
def key_client(db):
    """A function: an API client with a new key of `kind`, holding `role` (a group name)."""

    def make(kind: str = "secret", role: str | None = None) -> APIClient:
        group = Group.objects.get(name=role) if role else None
        _, raw = key_services.api_key_create(name=f"{kind}-{role}", kind=kind, role=group)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


BANNER_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "maxLength": 40}, "cta": {"type": "string"}},
    "required": ["title"],
}


@pytest.fixture
def banner(db) -> BlockType:
    return BlockType.objects.create(
        key="banner",
        name="Banner",
        template="<h2>{{ fields.title }}</h2>",
        schema=BANNER_SCHEMA,
    )


@pytest.fixture
def hero(db):
    return make_placement("hero")
