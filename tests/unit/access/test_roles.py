"""Roles: groups created by a migration with their permissions, enforced by the admin; the demo
seeds one user per role with passwords kept in var/ (mode 600); re-seeding keeps sessions."""

from __future__ import annotations

import stat

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from access.roles import ROLES
from core.bind import bind_base_url


@pytest.fixture
def staff_in(db, django_user_model):
    def make(role: str) -> Client:
        user = django_user_model.objects.create_user(
            role.lower().replace(" ", "-"), password=None, is_staff=True
        )
        user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        return client

    return make


def test_roles__after_migrate__five_groups_with_their_permissions(db):
    groups = {g.name: g for g in Group.objects.prefetch_related("permissions__content_type")}
    assert set(ROLES) <= set(groups)

    def codes(name):
        return {f"{p.content_type.app_label}.{p.codename}" for p in groups[name].permissions.all()}

    assert {"content.add_variant", "content.change_placement", "content.delete_blocktype"} <= codes(
        "Editor"
    )
    assert "segments.change_segment" not in codes("Editor")
    assert "segments.change_segment" in codes("Analyst")
    assert "experiments.view_experiment" in codes("Analyst")
    assert "experiments.change_experiment" not in codes("Analyst")
    assert "profiles.view_auditentry" not in codes("Analyst")
    assert "experiments.change_experiment" in codes("Experimenter")
    assert {"profiles.export_profile", "profiles.erase_profile", "profiles.view_auditentry"} <= (
        codes("Privacy officer")
    )
    assert "content.change_variant" not in codes("Privacy officer")
    assert "auth.change_user" in codes("Admin")


@pytest.mark.parametrize(
    ("role", "url_name", "status"),
    [
        ("Editor", "admin:content_variant_add", 200),
        ("Analyst", "admin:content_variant_add", 403),
        ("Analyst", "admin:segments_segment_add", 200),
        ("Editor", "admin:segments_segment_add", 403),
        ("Experimenter", "admin:experiments_experiment_add", 200),
        ("Editor", "admin:experiments_experiment_add", 403),
        ("Privacy officer", "admin:profiles_auditentry_changelist", 200),
        ("Editor", "admin:profiles_auditentry_changelist", 403),
        ("Analyst", "admin:profiles_profile_changelist", 403),
        ("Admin", "admin:auth_user_changelist", 200),
    ],
)
def test_role__admin_page__allowed_by_its_permissions(staff_in, role, url_name, status):
    assert staff_in(role).get(reverse(url_name)).status_code == status


def test_privacy_officer__profile_admin__export_and_erase_actions_offered(staff_in):
    response = staff_in("Privacy officer").get(reverse("admin:profiles_profile_changelist"))
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert {"export_json", "erase"} <= set(actions)


def test_seed_demo__role_passwords__one_user_per_role_file_600_stable(db, tmp_path, client):
    # Given the demo seeded with role users (no visitors: only the users matter here)
    path = tmp_path / "var" / "demo_role_passwords"
    call_command("seed_demo", "--visitors", "0", "--role-passwords", str(path))
    rows = [line.split(" ") for line in path.read_text().splitlines()]
    # Then each role has a user, signing in with the generated password, the file is private
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(rows) == len(ROLES)
    username, password = rows[0][0], rows[0][-1]
    assert client.login(username=username, password=password)
    # When the demo is seeded again (a restart of `make run`)
    call_command("seed_demo", "--visitors", "0", "--role-passwords", str(path))
    # Then the passwords are the same, and the signed-in session still works
    assert [line.split(" ") for line in path.read_text().splitlines()] == rows
    assert client.get(reverse("admin:index")).status_code == 200


def test_seed_demo__admin_password_again__session_kept(db, client):
    # Given the admin signed in after a first seed
    call_command("seed_demo", "--visitors", "0", "--admin-password", "pw-1")
    assert client.login(username="admin", password="pw-1")
    # When make run seeds again with the same password (every restart does)
    call_command("seed_demo", "--visitors", "0", "--admin-password", "pw-1")
    # Then the admin is still signed in (setting the password again had ended the session)
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("localhost:8080", "http://localhost:8080"),
        ("[::1]:8001", "http://[::1]:8001"),
        ("[::]:8002", "http://127.0.0.1:8002"),
        (":8003", "http://127.0.0.1:8003"),
        ("", "http://127.0.0.1:8000"),
        ("unix:/tmp/mosaic.sock", "unix:/tmp/mosaic.sock"),
    ],
)
def test_bind_base_url__mosaic_bind__the_url_it_binds(bind, url):
    assert bind_base_url(bind) == url


def test_privacy_officer__variant_preview_page__403(staff_in):
    from tests.factories import make_placement, make_variant

    variant = make_variant(make_placement("hero"), "v")
    url = reverse("mosaic-variant-preview", args=[variant.pk])
    assert staff_in("Privacy officer").get(url).status_code == 403
    assert staff_in("Editor").get(url).status_code == 200


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        # Segments: an Analyst builds them; an Editor (content) and an Experimenter only may not
        ("Analyst", "post", "/api/v1/segments", True),
        ("Editor", "post", "/api/v1/segments", False),
        ("Experimenter", "post", "/api/v1/segments", False),
        ("Experimenter", "get", "/api/v1/segments", True),
        ("Editor", "get", "/api/v1/segments", True),  # editors target variants at segments
        # Experiments: an Experimenter runs them; an Analyst reads them and cannot create
        ("Experimenter", "post", "/api/v1/experiments", True),
        ("Analyst", "post", "/api/v1/experiments", False),
        ("Analyst", "get", "/api/v1/experiments", True),
        ("Privacy officer", "get", "/api/v1/experiments", False),
        ("Privacy officer", "get", "/api/v1/segments", False),
    ],
)
def test_role__segments_and_experiments_api__enforced_by_its_permissions(
    staff_in, role, method, path, allowed
):
    # Given a staff user holding only one role
    client = staff_in(role)
    # When it calls the API (a write with an empty body: permission is checked before the body)
    if method == "post":
        response = client.post(path, "{}", content_type="application/json")
    else:
        response = client.get(path)
    # Then a role without the model permission is refused with the permission named, and a
    # role with it passes the check (a read answers, an empty create is refused by validation)
    if allowed:
        assert response.status_code in (200, 400), response.content[:300]
    else:
        assert response.status_code == 403, response.content[:300]
        assert "permission" in response.json()["errors"][0]["field"], response.json()
