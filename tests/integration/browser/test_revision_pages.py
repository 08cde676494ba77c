"""Revision history pages in Chromium: a segment's history with the diff of its condition, and
an experiment's history (arms line by line) with its revert buttons; each screenshotted into
var/screenshots/ (outside the repository) to be looked at."""

from __future__ import annotations

from content.models import Variant
from experiments.lifecycle import ArmSpec, experiment_create, experiment_update
from experiments.models import Experiment
from segments import segment_services
from segments.models import Segment

from .conftest import SCREENSHOTS


def _shot(locator, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"))


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_segment_history__condition_edited__diff_and_revert_button(admin_page, demo_server):
    # Given a segment whose condition and name were edited by two people
    segment = segment_services.segment_create(
        data={
            "key": "big-buyers",
            "name": "Big buyers",
            "condition": {"profile.aggregates.purchase_count": {"$gte": 1}},
        },
        author="ann",
    )
    segment_services.segment_update(
        segment=Segment.objects.get(pk=segment.pk),
        data={
            "name": "Big buyers (cart open)",
            "condition": {
                "profile.aggregates.purchase_count": {"$gte": 3},
                "profile.aggregates.cart_value": {"$gt": 50},
            },
        },
        author="bob",
    )
    # When its change page is opened
    admin_page.goto(f"{demo_server.url}/admin/segments/segment/{segment.pk}/change/")
    history = admin_page.locator("#object-history")
    history.scroll_into_view_if_needed()
    _shot(history, "segment-history")
    # Then the history shows the condition's diff, both authors, and one revert button
    assert history.locator(".ph-add", has_text="cart_value").count() == 1
    assert history.locator(".ph-del", has_text="1").count() >= 1
    assert history.get_by_role("button", name="Revert to this").count() == 1
    assert history.get_by_text("bob").count() == 1
    assert _page_width(admin_page) <= 1280


def test_experiment_history__weights_edited__arms_diff_and_revert(admin_page, demo_server):
    # Given an experiment whose weights and coverage were changed after its creation
    variants = list(Variant.objects.filter(placement__key="hero").order_by("pk")[:2])
    arms = [ArmSpec("control", variants[0], 1, True), ArmSpec("bold", variants[1], 1, False)]
    experiment = experiment_create(
        fields={"key": "hero-copy", "name": "Hero copy test", "placement": variants[0].placement},
        arms=arms,
        author="ann",
    )
    experiment_update(
        experiment=experiment,
        fields={"coverage": 0.5},
        arms=[arms[0], ArmSpec("bold", variants[1], 3, False)],
        author="bob",
    )
    # When its change page is opened
    admin_page.goto(f"{demo_server.url}/admin/experiments/experiment/{experiment.pk}/change/")
    history = admin_page.locator("#object-history")
    history.scroll_into_view_if_needed()
    _shot(history, "experiment-history")
    admin_page.screenshot(path=str(SCREENSHOTS / "admin-experiment-page.png"), full_page=True)
    # Then the arms' diff shows the new weight, and "Revert to this" restores the old one
    assert history.locator(".ph-add", has_text="weight 3").count() == 1
    history.get_by_role("button", name="Revert to this").click()
    admin_page.wait_for_selector(".messagelist")
    assert "is back to its revision of" in admin_page.locator(".messagelist").inner_text()
    assert Experiment.objects.get(pk=experiment.pk).arms.get(key="bold").weight == 1
    _shot(admin_page.locator("#object-history"), "experiment-history-reverted")
    assert _page_width(admin_page) <= 1280
