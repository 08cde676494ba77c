"""The admin works for every model (lists, search, forms), and refuses bad input at the field."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from content.models import Variant
from tests.factories import make_experiment, make_placement, make_segment, make_variant

MODELS = [
    model
    for model in admin.site._registry
    if model._meta.app_label in {"profiles", "segments", "content", "experiments"}
]


@pytest.fixture
def populated(db):
    placement = make_placement("hero")
    make_variant(placement, "vip", condition={"profile.segments": {"$in": ["vip"]}})
    make_experiment(placement)
    make_segment("vip", {"profile.traits.tier": "gold"})
    from profiles import services as profile_services

    profile_services.profile_set_traits(visitor="ann", traits={"tier": "gold"})
    return placement


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_admin__any_registered_model__changelist_search_and_change_page_load(
    admin_client, populated, model
):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(changelist, {"q": "x"}).status_code == 200
    obj = model.objects.first()
    if obj is not None:
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert admin_client.get(change).status_code == 200


def _variant_form(placement, **overrides):
    data = {
        "placement": placement.pk,
        "key": "new",
        "name": "New",
        "status": "live",
        "priority": 5,
        "condition": "{}",
        "locale": "",
        "template": "<p>ok</p>",
        "data": "{}",
    }
    data.update(overrides)
    return data


def test_admin__variant_with_bad_condition__error_at_field_with_path(admin_client, populated):
    url = reverse("admin:content_variant_add")
    response = admin_client.post(
        url, _variant_form(populated, condition='{"$or": [{"a": 1}, {"country": {"$in": "FR"}}]}')
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "condition" in errors
    assert "$.$or[1].country.$in" in errors["condition"][0]
    assert not Variant.objects.filter(key="new").exists()


def test_admin__variant_with_template_error__refused_with_line(admin_client, populated):
    url = reverse("admin:content_variant_add")
    response = admin_client.post(url, _variant_form(populated, template="<p>\n{% if x %}\n</p>"))
    errors = response.context["adminform"].form.errors
    assert "line" in errors["template"][0]
    assert not Variant.objects.filter(key="new").exists()


def test_admin__valid_variant__saved(admin_client, populated):
    url = reverse("admin:content_variant_add")
    response = admin_client.post(url, _variant_form(populated))
    assert response.status_code == 302
    assert Variant.objects.filter(key="new").exists()


def _placement_form(placement, *rows, **overrides):
    """The placement change form's POST body: its fields and one inline row per variant dict."""
    data = {
        "name": placement.name,
        "description": placement.description,
        "default_variant": placement.default_variant_id or "",
        "variants-TOTAL_FORMS": str(len(rows)),
        "variants-INITIAL_FORMS": str(sum(1 for row in rows if row.get("id"))),
    }
    for index, row in enumerate(rows):
        defaults = {"placement": placement.pk, "status": "live", "priority": 5, "locale": ""}
        data.update({f"variants-{index}-{k}": v for k, v in {**defaults, **row}.items()})
    data.update(overrides)
    return data


def test_admin__placement_with_template_variants_saved__inline_rows_accepted(
    admin_client, populated
):
    # Given a placement whose variants have their own templates (the inline does not show them)
    rows = [{"id": v.pk, "key": v.key, "name": v.name} for v in populated.variants.all()]
    # When the editor saves the placement page with the inline rows as they are
    response = admin_client.post(
        reverse("admin:content_placement_change", args=[populated.pk]),
        _placement_form(populated, *rows, name="Homepage hero"),
    )
    # Then it saves (the inline's rows are checked against their stored template, not refused)
    assert response.status_code == 302
    populated.refresh_from_db()
    assert populated.name == "Homepage hero"


def test_admin__inline_new_variant_without_content__error_on_row_not_500(admin_client, populated):
    # Given a new inline row with neither block type, template nor data
    rows = [{"id": v.pk, "key": v.key, "name": v.name} for v in populated.variants.all()]
    rows.append({"key": "empty", "name": "Empty", "block_type": ""})
    # When the editor saves
    response = admin_client.post(
        reverse("admin:content_placement_change", args=[populated.pk]),
        _placement_form(populated, *rows),
    )
    # Then the page comes back with the problem on that row, and nothing is created
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert "template" in formset.errors[-1]["__all__"][0]
    assert not Variant.objects.filter(key="empty").exists()


def test_admin__view_only_staff__placement_page_loads(client, django_user_model, populated):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_placement"))
    client.force_login(viewer)
    response = client.get(reverse("admin:content_placement_change", args=[populated.pk]))
    assert response.status_code == 200
