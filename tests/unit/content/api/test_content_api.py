"""The content management API: block types, placements and variants through the same service
functions as the admin (same refusals, revisions, audit entries), with ETag/If-Match."""

from __future__ import annotations

import pytest
from django.urls import reverse

from content.models import BlockType, Placement, Variant, VariantRevision, VariantStatus
from profiles.models import AuditAction, AuditEntry, Profile
from tests.factories import make_variant

VARIANTS = "/api/v1/variants"
PLACEMENTS = "/api/v1/placements"
BLOCK_TYPES = "/api/v1/block-types"


def _fields(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def _variant_body(**overrides):
    body = {
        "placement": "hero",
        "key": "spring",
        "name": "Spring",
        "block_type": "banner",
        "block_fields": {"title": "Spring sale"},
        "condition": {"request.device": "mobile"},
    }
    return body | overrides


# --- variants --------------------------------------------------------------------------------


def test_variant_create__editor__created_with_revision_audit_and_etag(editor_api, hero, banner):
    # When an editor creates a variant through the API
    response = editor_api.post(VARIANTS, _variant_body(), format="json")
    # Then it exists as a draft, with an ETag, a revision by that user and an audit entry
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["placement"], body["key"], body["status"]) == ("hero", "spring", "draft")
    assert response["ETag"].startswith('"')
    variant = Variant.objects.get(pk=body["id"])
    assert variant.revisions.get().author == "editor"
    entry = AuditEntry.objects.get(action=AuditAction.CONTENT_CHANGE, details__model="variant")
    assert entry.actor == "editor"
    assert entry.details == {"model": "variant", "object": "hero/spring", "change": "created"}


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"condition": {"request.device": {"$gt": []}}}, "condition", ""),
        ({"block_fields": {"title": "x" * 41}}, "block_fields.title", "too long"),
        ({"block_fields": {"cta": "Go"}}, "block_fields.title", "required"),
        ({"block_type": None, "template": "{% if %}"}, "template", "line 1"),
        ({"block_type": "nope"}, "block_type", "No block type"),
        ({"placement": "nope"}, "placement", "No placement"),
        ({"key": "not a slug"}, "key", "slug"),
        ({"priority": 10**12}, "priority", ""),
        ({"data": [1, 2]}, "data", "JSON object"),
        ({"block_fields": {"title": "ok", "cta": 5}}, "block_fields.cta", "not of type"),
        ({"colour": "red"}, "colour", "Unknown field"),
        (
            {"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"},
            "ends_at",
            "after the start",
        ),
        ({"key": "default"}, "body", "already exists"),
    ],
)
def test_variant_create__bad_input__400_naming_the_field_nothing_written(
    editor_api, hero, banner, overrides, field, words
):
    # Given the variants and revisions before
    before = (Variant.objects.count(), VariantRevision.objects.count())
    # When a variant with one bad field is sent
    response = editor_api.post(VARIANTS, _variant_body(**overrides), format="json")
    # Then 400 names that field, and nothing was written
    assert response.status_code == 400, response.content
    errors = _fields(response)
    assert field in errors, errors
    assert words.lower() in errors[field].lower()
    assert (Variant.objects.count(), VariantRevision.objects.count()) == before


def test_variant_validation__api_and_admin__same_message(editor_api, admin_client, hero, banner):
    # Given a payload that is JSON but not an object, sent through the API and through the admin
    api = editor_api.post(VARIANTS, _variant_body(data=[1, 2]), format="json")
    form = admin_client.post(
        reverse("admin:content_variant_add") + f"?block_type={banner.pk}",
        {
            "placement": hero.pk,
            "key": "spring",
            "name": "Spring",
            "status": "draft",
            "priority": 100,
            "condition": "{}",
            "block_type": banner.pk,
            "block__title": "Spring sale",
            "data": "[1, 2]",
        },
    )
    # Then both refuse it with the service's one message, by field
    admin_errors = form.context["adminform"].form.errors
    assert admin_errors["data"] == [_fields(api)["data"]] == ["Must be a JSON object."]


def _created(client, **overrides) -> tuple[int, str]:
    response = client.post(VARIANTS, _variant_body(**overrides), format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"], response["ETag"]


def test_variant_patch__without_if_match__428(editor_api, hero, banner):
    variant_id, _ = _created(editor_api)
    response = editor_api.patch(f"{VARIANTS}/{variant_id}", {"priority": 5}, format="json")
    assert response.status_code == 428
    assert "If-Match" in _fields(response)
    assert Variant.objects.get(pk=variant_id).priority == 100


def test_variant_patch__stale_if_match__412_with_current_etag(editor_api, hero, banner):
    # Given a variant read by two clients, then changed by the first
    variant_id, etag = _created(editor_api)
    first = editor_api.patch(
        f"{VARIANTS}/{variant_id}", {"priority": 5}, format="json", HTTP_IF_MATCH=etag
    )
    assert first.status_code == 200
    # When the second writes with its stale ETag
    second = editor_api.patch(
        f"{VARIANTS}/{variant_id}", {"name": "Mine"}, format="json", HTTP_IF_MATCH=etag
    )
    # Then it is refused (412) with the current ETag, and the first change stands
    assert second.status_code == 412
    assert second["ETag"] == first["ETag"] != etag
    variant = Variant.objects.get(pk=variant_id)
    assert (variant.priority, variant.name) == (5, "Spring")


def test_variant_put__repeated__idempotent_one_revision(editor_api, hero, banner):
    # Given a variant and a full replacement of it
    variant_id, etag = _created(editor_api)
    body = _variant_body(name="Spring 2", status="live", priority=7)
    url = f"{VARIANTS}/{variant_id}"
    # When the same PUT is sent twice with the ETag read before (a retry after a lost answer)
    first = editor_api.put(url, body, format="json", HTTP_IF_MATCH=etag)
    second = editor_api.put(url, body, format="json", HTTP_IF_MATCH=etag)
    # Then both succeed with the same state and tag, and only one revision was added
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first["ETag"] == second["ETag"]
    variant = Variant.objects.get(pk=variant_id)
    assert (variant.name, variant.status, variant.priority) == ("Spring 2", "live", 7)
    assert variant.revisions.count() == 2


def test_variant_put__omitted_optional_fields__reset_to_defaults(editor_api, hero, banner):
    variant_id, etag = _created(editor_api, priority=3, data={"a": 1})
    response = editor_api.put(
        f"{VARIANTS}/{variant_id}", _variant_body(), format="json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 200
    assert (response.json()["priority"], response.json()["data"]) == (100, {})


def test_variant_patch__move_to_another_placement__400(editor_api, hero, banner):
    from tests.factories import make_placement

    make_placement("promo")
    variant_id, etag = _created(editor_api)
    response = editor_api.patch(
        f"{VARIANTS}/{variant_id}", {"placement": "promo"}, format="json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 400
    assert "placement" in _fields(response)


def test_variant_get__etag_matches_write_precondition(editor_api, hero, banner):
    variant_id, created_tag = _created(editor_api)
    read = editor_api.get(f"{VARIANTS}/{variant_id}")
    assert read.status_code == 200
    assert read["ETag"] == created_tag


def test_variant_list__filtered_by_placement_and_status(editor_api, hero, banner):
    from tests.factories import make_placement

    make_variant(make_placement("promo"), "other")
    make_variant(hero, "draft-one", status=VariantStatus.DRAFT)
    response = editor_api.get(VARIANTS, {"placement": "hero", "status": "draft"})
    assert response.status_code == 200
    assert [v["key"] for v in response.json()["results"]] == ["draft-one"]


def test_variant_delete__default__refused_naming_default_variant(editor_api, hero):
    default = hero.default_variant
    etag = editor_api.get(f"{VARIANTS}/{default.pk}")["ETag"]
    response = editor_api.delete(f"{VARIANTS}/{default.pk}", HTTP_IF_MATCH=etag)
    assert response.status_code == 400
    assert "default_variant" in _fields(response)
    assert Variant.objects.filter(pk=default.pk).exists()


def test_variant_delete__other__204_and_audited(editor_api, hero):
    variant = make_variant(hero, "spare")
    etag = editor_api.get(f"{VARIANTS}/{variant.pk}")["ETag"]
    response = editor_api.delete(f"{VARIANTS}/{variant.pk}", HTTP_IF_MATCH=etag)
    assert response.status_code == 204
    assert not Variant.objects.filter(pk=variant.pk).exists()
    assert AuditEntry.objects.filter(
        details__change="deleted", details__object="hero/spare"
    ).exists()


# --- preview --------------------------------------------------------------------------------


def test_variant_preview__typed_context__renders_without_saving(editor_api, hero, banner):
    # Given a draft block variant for mobile visitors
    variant_id, _ = _created(editor_api, data={"campaign": "spring"})
    revisions = VariantRevision.objects.count()
    # When it is previewed for a mobile and a desktop context
    url = f"{VARIANTS}/{variant_id}/preview"
    mobile = editor_api.post(url, {"context": {"device": "mobile"}}, format="json")
    desktop = editor_api.post(url, {"context": {"device": "desktop"}}, format="json")
    # Then it renders, says whether it matches, shows decide's data, and nothing was saved
    assert mobile.status_code == 200, mobile.content
    assert mobile.json()["html"] == "<h2>Spring sale</h2>"
    assert mobile.json()["matches"] is True
    assert desktop.json()["matches"] is False
    assert mobile.json()["data"] == {"title": "Spring sale", "campaign": "spring"}
    assert mobile.json()["decision"]["variant"] == "default"  # a draft is never served
    assert VariantRevision.objects.count() == revisions
    assert Variant.objects.get(pk=variant_id).status == VariantStatus.DRAFT


def test_variant_preview__stored_visitor_unknown__new_visitor_nothing_stored(editor_api, hero):
    variant = make_variant(hero, "v")
    response = editor_api.post(
        f"{VARIANTS}/{variant.pk}/preview", {"visitor": "ann"}, format="json"
    )
    assert response.status_code == 200
    assert "new visitor" in response.json()["profile_source"]
    assert not Profile.objects.exists()


def test_variant_preview__bad_device__400_naming_context_device(editor_api, hero):
    variant = make_variant(hero, "v")
    response = editor_api.post(
        f"{VARIANTS}/{variant.pk}/preview", {"context": {"device": "fridge"}}, format="json"
    )
    assert response.status_code == 400
    assert "context.device" in _fields(response)


# --- placements -----------------------------------------------------------------------------


def test_placement_create_then_default__revisions_and_validation(editor_api, db):
    # Given a new placement created through the API, and a live variant of it
    created = editor_api.post(PLACEMENTS, {"key": "promo", "name": "Promo"}, format="json")
    assert created.status_code == 201, created.content
    placement = Placement.objects.get(key="promo")
    make_variant(placement, "live-one")
    make_variant(placement, "draft-one", status=VariantStatus.DRAFT)
    etag = editor_api.get(f"{PLACEMENTS}/promo")["ETag"]
    # When a draft is chosen as its default, then a live variant
    draft = editor_api.patch(
        f"{PLACEMENTS}/promo", {"default_variant": "draft-one"}, format="json", HTTP_IF_MATCH=etag
    )
    live = editor_api.patch(
        f"{PLACEMENTS}/promo", {"default_variant": "live-one"}, format="json", HTTP_IF_MATCH=etag
    )
    # Then the draft is refused by field (the admin's rule), the live one taken and revisioned
    assert draft.status_code == 400
    assert "default_variant" in _fields(draft)
    assert live.status_code == 200, live.content
    assert live.json()["default_variant"] == "live-one"
    assert placement.revisions.count() == 2
    assert placement.revisions.first().author == "editor"


def test_placement_patch__key_change__400_naming_key(editor_api, hero):
    etag = editor_api.get(f"{PLACEMENTS}/hero")["ETag"]
    response = editor_api.patch(
        f"{PLACEMENTS}/hero", {"key": "hero2"}, format="json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 400
    assert "key" in _fields(response)


def test_placement_patch__unknown_default__400(editor_api, hero):
    etag = editor_api.get(f"{PLACEMENTS}/hero")["ETag"]
    response = editor_api.patch(
        f"{PLACEMENTS}/hero", {"default_variant": "ghost"}, format="json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 400
    assert "default_variant" in _fields(response)


def test_placement_delete__with_variants__204_all_gone(editor_api, hero):
    make_variant(hero, "other")
    etag = editor_api.get(f"{PLACEMENTS}/hero")["ETag"]
    response = editor_api.delete(f"{PLACEMENTS}/hero", HTTP_IF_MATCH=etag)
    assert response.status_code == 204
    assert not Placement.objects.exists()
    assert not Variant.objects.exists()


def test_placement_get__unknown__404(editor_api, db):
    assert editor_api.get(f"{PLACEMENTS}/nope").status_code == 404


# --- block types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"template": "{{ fields.title "}, "template"),
        ({"schema": {"type": "array"}}, "schema"),
        ({"schema": {"type": "object", "properties": {"a": {"type": 5}}}}, "schema"),
        (
            {"schema": {"type": "object", "properties": {"a": {"pattern": "(a+)+$"}}}},
            "schema",
        ),
        ({"key": "banner"}, "key"),
    ],
)
def test_block_type_create__bad_input__400_naming_the_field(editor_api, banner, overrides, field):
    body = {"key": "card", "name": "Card", "template": "<p>{{ fields.a }}</p>"} | overrides
    before = BlockType.objects.count()  # the banner, and any block type a migration ships
    response = editor_api.post(BLOCK_TYPES, body, format="json")
    assert response.status_code == 400, response.content
    assert field in _fields(response)
    assert BlockType.objects.count() == before


def test_block_type_update__template__snapshot_renders_new_template(editor_api, hero, banner):
    # Given a live block variant served to everyone
    make_variant(hero, "b", block_type=banner, block_fields={"title": "Hi"}, priority=1)
    from personalization.snapshot import holder

    assert holder.get().placements["hero"].targeted[0].key == "b"
    # When the block type's template changes through the API
    etag = editor_api.get(f"{BLOCK_TYPES}/banner")["ETag"]
    response = editor_api.patch(
        f"{BLOCK_TYPES}/banner",
        {"template": "<h3>{{ fields.title }}</h3>"},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert response.status_code == 200
    # Then decide renders the new template (the change bumped the snapshot)
    holder.reset()
    decision = editor_api.get("/api/v1/decide", {"placements": "hero"}).json()
    assert decision["placements"]["hero"]["html"] == "<h3>Hi</h3>"


def test_block_type_delete__in_use__400(editor_api, hero, banner):
    make_variant(hero, "b", block_type=banner, block_fields={"title": "Hi"})
    etag = editor_api.get(f"{BLOCK_TYPES}/banner")["ETag"]
    response = editor_api.delete(f"{BLOCK_TYPES}/banner", HTTP_IF_MATCH=etag)
    assert response.status_code == 400
    assert "key" in _fields(response)
    assert BlockType.objects.filter(key="banner").exists()
