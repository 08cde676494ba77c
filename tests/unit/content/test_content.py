"""Content for editors: block types with schema-generated forms, revisions and revert, preview."""

from __future__ import annotations

import pytest
from django import forms
from django.urls import reverse

from content.models import BlockType, Variant, VariantRevision
from content.services import block_values_problems, variant_revert, variant_save
from profiles import services as profile_services
from tests.factories import make_placement, make_segment, make_variant

HERO_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 20},
        "tone": {"type": "string", "enum": ["plain", "gold"]},
        "count": {"type": "integer", "minimum": 1},
        "show": {"type": "boolean"},
    },
    "required": ["title", "tone"],
}


@pytest.fixture
def hero_block(db) -> BlockType:
    return BlockType.objects.create(
        key="hero-banner",
        name="Hero banner",
        template="<h2 class='{{ fields.tone }}'>{{ fields.title }}</h2>",
        schema=HERO_SCHEMA,
    )


def _form_data(placement, block, **values):
    data = {
        "placement": placement.pk,
        "key": "blocky",
        "name": "Blocky",
        "status": "live",
        "priority": 5,
        "condition": "{}",
        "locale": "",
        "block_type": block.pk,
        "data": "{}",
    }
    data.update({f"block__{k}": v for k, v in values.items()})
    return data


def test_block_form__block_type_chosen__one_field_per_schema_property(admin_client, hero_block):
    # Given a block type with four declared fields (title, tone required)
    # When an editor opens the add form for that block
    response = admin_client.get(reverse("admin:content_variant_add"), {"block_type": hero_block.pk})
    # Then the form has one input per schema property, of the kind and limits the schema says
    form = response.context["adminform"].form
    block = {name: field for name, field in form.fields.items() if name.startswith("block__")}
    assert set(block) == {"block__title", "block__tone", "block__count", "block__show"}
    assert isinstance(block["block__title"], forms.CharField)
    assert block["block__title"].max_length == 20
    assert [c[0] for c in block["block__tone"].choices] == ["", "plain", "gold"]
    assert isinstance(block["block__count"], forms.IntegerField)
    assert block["block__count"].min_value == 1
    assert isinstance(block["block__show"], forms.BooleanField)
    assert {name for name, field in block.items() if field.required} == {
        "block__title",
        "block__tone",
    }


def test_block_form__valid_values__saved_and_rendered_by_decide(admin_client, hero_block, client):
    placement = make_placement("hero")
    url = reverse("admin:content_variant_add") + f"?block_type={hero_block.pk}"
    response = admin_client.post(url, _form_data(placement, hero_block, title="Hi", tone="gold"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    variant = Variant.objects.get(key="blocky")
    assert variant.block_fields == {"title": "Hi", "tone": "gold", "show": False}
    body = client.get("/api/v1/decide", {"placements": "hero", "visitor": "x"}).json()
    assert body["placements"]["hero"]["html"] == "<h2 class='gold'>Hi</h2>"


def test_block_form__bad_values__errors_at_their_fields(admin_client, hero_block):
    placement = make_placement("hero")
    url = reverse("admin:content_variant_add") + f"?block_type={hero_block.pk}"
    response = admin_client.post(
        url, _form_data(placement, hero_block, title="x" * 30, tone="", count="0")
    )
    errors = response.context["adminform"].form.errors
    assert "block__title" in errors
    assert "block__tone" in errors
    assert "block__count" in errors
    assert not Variant.objects.filter(key="blocky").exists()


def test_block_values_problems__bad_and_missing_values__names_each_field(hero_block):
    problems = block_values_problems(block_type=hero_block, values={"title": 3})
    assert set(problems) == {"title", "tone"}


def test_block_type_admin__bad_schema_and_template__refused(admin_client, db):
    response = admin_client.post(
        reverse("admin:content_blocktype_add"),
        {
            "key": "b",
            "name": "B",
            "description": "",
            "template": "{% for %}",
            "schema": '{"type": "object", "properties": {"a": {"type": "strung"}}}',
        },
    )
    errors = response.context["adminform"].form.errors
    assert "line 1" in errors["template"][0]
    assert "schema" in errors
    assert not BlockType.objects.filter(key="b").exists()  # (a migration adds "recommendations")


def test_variant_save__writes_revision__revert_restores(admin_user, db):
    # Given a variant saved twice by an editor
    placement = make_placement("hero")
    variant = make_variant(placement, "v", template="<p>one</p>")
    variant_save(variant=variant, author="ed")
    first = variant.revisions.get()
    variant.template = "<p>two</p>"
    variant.priority = 3
    variant_save(variant=variant, author="ed")
    # When the first revision is reverted
    reverted = variant_revert(revision=first, author="chief")
    # Then the variant is back, and the revert is itself a revision
    assert (reverted.template, reverted.priority) == ("<p>one</p>", 10)
    assert VariantRevision.objects.filter(variant=variant).count() == 3
    assert variant.revisions.first().author == "chief"


def test_admin_revert_action__oldest_revision_selected__variant_restored(admin_client, db):
    placement = make_placement("hero")
    variant = make_variant(placement, "v", template="<p>one</p>")
    variant_save(variant=variant, author="ed")
    variant.template = "<p>two</p>"
    variant_save(variant=variant, author="ed")
    oldest = variant.revisions.last()
    response = admin_client.post(
        reverse("admin:content_variantrevision_changelist"),
        {"action": "revert", "_selected_action": [oldest.pk]},
    )
    assert response.status_code == 302
    variant.refresh_from_db()
    assert variant.template == "<p>one</p>"


def test_admin_variant_edit__saved_by_admin__revision_records_author(admin_client, db):
    placement = make_placement("hero")
    variant = make_variant(placement, "v")
    data = {
        "placement": placement.pk,
        "key": "v",
        "name": "v",
        "status": "live",
        "priority": 7,
        "condition": "{}",
        "locale": "",
        "template": "<p>edited</p>",
        "data": "{}",
    }
    response = admin_client.post(reverse("admin:content_variant_change", args=[variant.pk]), data)
    assert response.status_code == 302
    assert variant.revisions.get().author == "admin"


def test_placement_form__has_variants__default_required(admin_client, db):
    placement = make_placement("hero")
    response = admin_client.get(reverse("admin:content_placement_change", args=[placement.pk]))
    assert response.context["adminform"].form.fields["default_variant"].required


def test_preview__as_visitor__renders_and_explains(admin_client, db):
    # Given a targeted variant for gold visitors and one such visitor
    placement = make_placement("hero")
    variant = make_variant(
        placement,
        "gold",
        condition={"profile.segments": {"$in": ["gold"]}},
        template="<p>Hello {{ profile.traits.name }}</p>",
    )
    make_segment("gold", {"profile.traits.tier": "gold"})
    profile_services.profile_set_traits(visitor="ann", traits={"tier": "gold", "name": "Ann"})
    # When the editor previews it as that visitor
    url = reverse("mosaic-variant-preview", args=[variant.pk])
    response = admin_client.get(url, {"visitor": "ann", "url": "https://shop/"})
    # Then the page shows the rendered block, that the condition matches, and the live decision
    assert response.status_code == 200
    result = response.context["result"]
    assert result.matches is True
    assert result.html == "<p>Hello Ann</p>"
    assert result.decision.reason == "targeted:gold"
    assert b"matches this context" in response.content


def test_preview__typed_context__no_match(admin_client, db):
    placement = make_placement("hero")
    variant = make_variant(placement, "mobile", condition={"request.device": "mobile"})
    url = reverse("mosaic-variant-preview", args=[variant.pk])
    response = admin_client.get(url, {"device": "desktop", "profile": '{"traits": {}}'})
    assert response.context["result"].matches is False
    assert response.context["result"].decision.reason == "default"


def test_preview__bad_json__field_error_no_500(admin_client, db):
    placement = make_placement("hero")
    variant = make_variant(placement, "v")
    url = reverse("mosaic-variant-preview", args=[variant.pk])
    response = admin_client.get(url, {"profile": "{nope", "attributes": "[1]"})
    assert response.status_code == 200
    assert "profile" in response.context["form"].errors
    assert "attributes" in response.context["form"].errors


def test_preview__anonymous__redirected_to_login(client, db):
    placement = make_placement("hero")
    variant = make_variant(placement, "v")
    response = client.get(reverse("mosaic-variant-preview", args=[variant.pk]))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
