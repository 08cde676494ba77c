"""The audience builder in Chromium: picking an attribute, an operator and a value writes the
JSON and its description side by side; nested groups with NOT; the JSON typed by hand redraws the
builder; a segment condition gets its live count of matching stored profiles."""

from __future__ import annotations

import json

import pytest

from profiles.models import Profile

from .test_admin_pages import _page_width, _shot

pytestmark = pytest.mark.usefixtures("demo_server")


def _condition(page, field: str = "#id_condition") -> dict:
    return json.loads(page.locator(field).input_value())


def test_builder__variant__pick_rule_then_nested_not_or_group(admin_page, demo_server):
    # Given the variant add page
    admin_page.goto(f"{demo_server.url}/admin/content/variant/add/")
    builder = admin_page.locator(".audience-builder")
    # When an editor adds "request.device is mobile"
    builder.locator(".ab-add-rule").first.click()
    rule = builder.locator(".ab-rule").first
    rule.locator(".ab-path").fill("request.device")
    rule.locator(".ab-path").dispatch_event("change")
    rule.locator(".ab-value").fill("mobile")
    rule.locator(".ab-value").dispatch_event("change")
    # Then the JSON and the words follow
    assert _condition(admin_page) == {"request.device": "mobile"}
    admin_page.wait_for_function(
        "document.querySelector('.ab-description').textContent.includes('request.device is mobile')"
    )
    # When a NOT (ANY of ...) group is added holding "request.language is one of fr, de"
    builder.locator(".ab-add-group").first.click()
    group = builder.locator(".ab-group .ab-group").first
    group.locator("input[type=checkbox]").check()
    group.locator(".ab-add-rule").click()
    inner = group.locator(".ab-rule").first
    inner.locator(".ab-path").fill("request.language")
    inner.locator(".ab-op").select_option("$in")
    inner.locator(".ab-value").fill("fr, de")
    inner.locator(".ab-value").dispatch_event("change")
    # Then the JSON nests it, and the words say it
    assert _condition(admin_page) == {
        "request.device": "mobile",
        "$not": {"$or": [{"request.language": {"$in": ["fr", "de"]}}]},
    }
    admin_page.wait_for_function(
        "document.querySelector('.ab-description').textContent.includes('not')"
    )
    _shot(admin_page, "audience-builder-variant")
    assert _page_width(admin_page) <= 1280


def test_builder__json_typed__builder_redrawn_and_catalogue_warning(admin_page, demo_server):
    admin_page.goto(f"{demo_server.url}/admin/content/variant/add/")
    admin_page.locator("#id_condition").fill('{"request.utm_campaign": "spring"}')
    admin_page.locator("#id_condition").dispatch_event("input")
    assert admin_page.locator(".ab-rule .ab-path").first.input_value() == "request.utm_campaign"
    warning = admin_page.locator(".ab-problems li.ab-warning")
    warning.wait_for()
    assert "request.utm.campaign" in warning.inner_text()


def test_builder__segment__live_count_of_stored_profiles(admin_page, demo_server):
    # Given the demo's stored profiles, some of which purchased
    buyers = sum(
        1 for p in Profile.objects.all() if (p.aggregates or {}).get("purchase_count", 0) >= 1
    )
    total = Profile.objects.count()
    # When an analyst builds "purchase_count ≥ 1" on the segment add page
    admin_page.goto(f"{demo_server.url}/admin/segments/segment/add/")
    builder = admin_page.locator(".audience-builder")
    builder.locator(".ab-add-rule").first.click()
    rule = builder.locator(".ab-rule").first
    rule.locator(".ab-path").fill("profile.aggregates.purchase_count")
    rule.locator(".ab-op").select_option("$gte")
    rule.locator(".ab-value").fill("1")
    rule.locator(".ab-value").dispatch_event("change")
    # Then the number (not the string) is in the JSON, and the live count is the stored truth
    assert _condition(admin_page) == {"profile.aggregates.purchase_count": {"$gte": 1}}
    expected = f"{buyers} of {total} stored profiles match"
    admin_page.wait_for_function(
        "expected => document.querySelector('.ab-count').textContent === expected", arg=expected
    )
    assert admin_page.locator(".ab-count").inner_text() == expected
    assert buyers > 0
    _shot(admin_page, "audience-builder-segment")


def test_builder__relative_instant__kept_as_an_object(admin_page, demo_server):
    # Given a cart-abandoner condition typed as JSON (a relative instant, main's $ago)
    admin_page.goto(f"{demo_server.url}/admin/segments/segment/add/")
    condition = {
        "profile.aggregates.last_add_to_cart_at": {"$lte": {"$ago": "10m"}},
        "profile.aggregates.purchased_since_last_add_to_cart": False,
    }
    admin_page.locator("#id_condition").fill(json.dumps(condition))
    admin_page.locator("#id_condition").dispatch_event("input")
    # When the builder's value of the first rule is edited to 30 minutes
    value = admin_page.locator(".ab-rule .ab-value").first
    assert value.input_value() == '{"$ago":"10m"}'
    value.fill('{"$ago": "30m"}')
    value.dispatch_event("change")
    # Then the JSON holds the object, not a string, and no problem is reported
    assert _condition(admin_page)["profile.aggregates.last_add_to_cart_at"] == {
        "$lte": {"$ago": "30m"}
    }
    admin_page.wait_for_function(
        "document.querySelector('.ab-description').textContent.includes('30 minutes ago')"
    )
    assert admin_page.locator(".ab-problems li").count() == 0
