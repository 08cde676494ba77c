"""The attribute catalogue against the code that fills the attributes (request context,
aggregates), the traits declared in the database, and its checks at save: segment conditions
refused, variant conditions warned."""

from __future__ import annotations

import json

from django.urls import reverse

from content.models import Variant
from identity.models import TraitDefinition
from personalization.context import build_request_context
from profiles.aggregates import empty_aggregates
from rules.catalogue import INTERNAL_PATHS, STATIC_ATTRIBUTES, attribute_for
from segments.catalogue import attribute_catalogue, condition_findings
from segments.models import Segment
from tests.factories import make_placement


def test_catalogue__every_request_attribute_decide_builds__listed():
    context = build_request_context(url="https://shop.example/?utm_source=mail")
    for name, value in context.items():
        paths = [f"request.{name}.x"] if isinstance(value, dict) else [f"request.{name}"]
        if name == "utm":
            paths = [f"request.utm.{key}" for key in ("source", "medium", "campaign")]
        for path in paths:
            assert attribute_for(path, STATIC_ATTRIBUTES) is not None, path


def test_catalogue__every_aggregate_ingestion_keeps__listed_or_internal():
    for name, value in empty_aggregates().items():
        if f"profile.aggregates.{name}" in INTERNAL_PATHS:
            continue  # storage behind another attribute (the windows), with its own finding
        path = f"profile.aggregates.{name}" + (".x" if isinstance(value, dict) else "")
        assert attribute_for(path, STATIC_ATTRIBUTES) is not None, path


def test_findings__internal_buckets__points_at_the_windows(db):
    [finding] = condition_findings({"profile.aggregates.buckets.d": {"$exists": True}})
    assert "profile.windows" in finding.message


def test_catalogue__declared_trait__typed_attribute(db):
    TraitDefinition.objects.create(name="tier", type="string", description="Loyalty tier.")
    attribute = attribute_for("profile.traits.tier", attribute_catalogue())
    assert (attribute.type, attribute.description) == ("string", "Loyalty tier.")
    assert condition_findings({"profile.traits.tier": "gold"}, profile_only=True) == []
    assert condition_findings({"profile.traits.tier": 3})[0].severity == "warning"


def _segment_post(admin_client, condition):
    return admin_client.post(
        reverse("admin:segments_segment_add"),
        {
            "key": "mobiles",
            "name": "Mobiles",
            "description": "",
            "kind": "condition",
            "condition": json.dumps(condition),
            "is_active": "on",
            # The segment page's trigger inline (webhooks): none.
            "triggers-TOTAL_FORMS": "0",
            "triggers-INITIAL_FORMS": "0",
        },
    )


def test_segment_admin__request_attribute__refused_by_field(admin_client, db):
    response = _segment_post(admin_client, {"request.device": "mobile"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["condition"]
    assert "no request" in errors[0]
    assert not Segment.objects.exists()


def test_segment_admin__profile_attribute__saved(admin_client, db):
    response = _segment_post(admin_client, {"profile.aggregates.frequency": {"$gte": 2}})
    assert response.status_code == 302
    assert Segment.objects.filter(key="mobiles").exists()


def test_variant_api__path_outside_catalogue__saved_with_warning(db, admin_client):
    make_placement("hero")
    response = admin_client.post(
        "/api/v1/variants",
        {
            "placement": "hero",
            "key": "spring",
            "name": "Spring",
            "template": "<p>spring</p>",
            "condition": {"request.utm_campaign": "spring"},
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    [warning] = response.json()["warnings"]
    assert "request.utm.campaign" in warning
    assert Variant.objects.filter(key="spring").exists()


def test_variant_admin__relative_time__saved_with_warning_message(admin_client, db):
    placement = make_placement("hero")
    response = admin_client.post(
        reverse("admin:content_variant_add"),
        {
            "placement": placement.pk,
            "key": "recent",
            "name": "Recent",
            "status": "draft",
            "priority": 10,
            "condition": json.dumps({"profile.aggregates.last_seen": {"$gt": "now-30m"}}),
            "template": "<p>recent</p>",
            "data": "{}",
        },
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert any("not a date" in t for t in texts), texts
    assert Variant.objects.filter(key="recent").exists()
