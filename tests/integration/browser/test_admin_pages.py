"""Admin pages in Chromium: a variant's history with its diff, the placement page at 1280 px,
the roles' groups; each screenshotted into var/screenshots/ to be looked at."""

from __future__ import annotations

from django.contrib.auth.models import Group

from content.models import Placement, Variant
from content.services import variant_save

from .conftest import SCREENSHOTS


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"), full_page=True)


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_variant_history__two_edits__diff_and_revert_buttons_shown(admin_page, demo_server):
    # Given a demo block variant edited twice (a block field added, condition and priority)
    variant = Variant.objects.exclude(block_type=None).filter(placement__key="hero").first()
    variant_save(variant=variant, author="ed")
    variant.block_fields = {**variant.block_fields, "subtitle": "Free shipping today"}
    variant.condition = {"request.device": "mobile"}
    variant.priority = 5
    variant_save(variant=variant, author="bo", validate=False)
    # When its change page is opened
    admin_page.goto(f"{demo_server.url}/admin/content/variant/{variant.pk}/change/")
    history = admin_page.locator("#object-history")
    history.scroll_into_view_if_needed()
    _shot(admin_page, "variant-history")
    # Then the history shows the added template line and a revert button for the older state
    assert history.locator(".ph-add", has_text="Free shipping today").count() == 1
    assert history.get_by_role("button", name="Revert to this").count() >= 1
    assert _page_width(admin_page) <= 1280


def test_placement_page__1280px__no_horizontal_scroll(admin_page, demo_server):
    placement = Placement.objects.get(key="hero")
    admin_page.goto(f"{demo_server.url}/admin/content/placement/{placement.pk}/change/")
    _shot(admin_page, "placement")
    assert _page_width(admin_page) <= 1280


def test_roles__groups_page__five_roles(admin_page, demo_server):
    admin_page.goto(f"{demo_server.url}/admin/auth/group/")
    _shot(admin_page, "roles")
    names = admin_page.locator("#result_list tbody th a").all_inner_texts()
    assert set(names) >= set(Group.objects.values_list("name", flat=True))
    assert len(names) >= 5
