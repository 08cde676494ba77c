"""Recommendation impressions and clicks from the demo page in Chromium, stored by a real worker,
counted per model version on the admin's training runs page."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from core.pseudonym import pseudonymize
from profiles.models import Event
from recommendations.models import RunStatus, TrainingRun
from tests.conftest import wait_for

from .conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]

CONSENTED = '{"analytics":true,"personalization":true,"marketing":false}'
RECS_BLOCK = '[data-mosaic-placement="recs"][data-mosaic-recs]'


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _events_call(name: str, *, request: bool = False):
    """A predicate on responses (or requests): the snippet's POST /api/v1/events carrying this
    event name."""

    def matches(response) -> bool:
        if "/api/v1/events" not in response.url:
            return False
        sent = response if request else response.request
        body = json.loads(sent.post_data or "{}")
        return any(e.get("name") == name for e in body.get("events", []))

    return matches


def _stored(name: str, run: int) -> list[Event]:
    return [
        e
        for e in Event.objects.filter(type="custom", name=name).select_related("profile")
        if e.properties.get("run") == run
    ]


def test_demo_carousel__click_a_recommended_item__click_recorded_for_its_model_version(
    page, admin_page, demo_server, celery_worker
):
    # Given the demo (seeded and trained) opened as the loyal customer, consent already given,
    # and the fictional shop's product pages answered locally (no network)
    run = TrainingRun.objects.get(status=RunStatus.ACTIVE)
    page.route(
        "https://shop.example/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>record</h1>"),
    )
    page.context.add_cookies(
        [
            {"name": "mosaic_vid", "value": "demo-loyal", "url": demo_server.url},
            {"name": "mosaic_consent", "value": quote(CONSENTED), "url": demo_server.url},
        ]
    )
    with page.expect_response(_events_call("recommendation_impression")) as impression:
        page.goto(demo_server.url + "/")
        block = page.locator(RECS_BLOCK)
        block.wait_for()
        # the carousel scrolled into view: half visible, it counts as an impression
        block.scroll_into_view_if_needed()
    assert impression.value.ok, impression.value.text()
    # Then the carousel names the active run (the persona's own list) and its items
    assert block.get_attribute("data-mosaic-recs-run") == str(run.pk)
    assert block.get_attribute("data-mosaic-recs-source") == "als"
    assert block.get_attribute("data-mosaic-recs") == "recs"
    skus = block.locator("[data-sku]").evaluate_all("els => els.map(e => e.dataset.sku)")
    assert len(skus) == 4
    page.locator('[data-mosaic-placement="recs"]').screenshot(
        path=str(SCREENSHOTS / "demo-recs-carousel.png")
    )

    # When the visitor clicks the second recommended item (a link to its product page: the
    # page navigates away at once, so the request is watched, not its answer, which belongs to
    # the page left behind; the worker storing it below is what shows it arrived)
    with page.expect_request(_events_call("recommendation_click", request=True)):
        block.locator(f'[data-sku="{skus[1]}"] a').click()
    page.wait_for_url("https://shop.example/**")

    # Then the worker stores the click for that model version, item and placement, and one
    # impression of the list that was shown
    clicks = wait_for(
        lambda: _stored("recommendation_click", run.pk), message=celery_worker.output()
    )
    assert len(clicks) == 1
    assert clicks[0].profile.key == pseudonymize("demo-loyal")
    assert clicks[0].properties == {
        "run": run.pk,
        "source": "als",
        "placement": "recs",
        "sku": skus[1],
    }
    impressions = wait_for(
        lambda: _stored("recommendation_impression", run.pk), message=celery_worker.output()
    )
    assert len(impressions) == 1
    assert impressions[0].properties["skus"] == skus

    # and the admin's training runs page shows that run's click-through rate
    admin_page.goto(f"{demo_server.url}/admin/recommendations/trainingrun/")
    row = admin_page.locator("#result_list tbody tr").filter(
        has=admin_page.locator(f'a[href$="/trainingrun/{run.pk}/change/"]')
    )
    assert "100.00% (1 / 1)" in row.inner_text()
    assert "als: 100.00% (1 / 1)" in row.inner_text()
    _shot(admin_page, "admin-recs-runs-ctr")


def test_demo_carousel__analytics_refused__no_impression_or_click_sent(page, demo_server):
    # Given the loyal customer refused analytics (personalization allowed)
    page.route(
        "https://shop.example/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>record</h1>"),
    )
    refused = '{"analytics":false,"personalization":true,"marketing":false}'
    page.context.add_cookies(
        [
            {"name": "mosaic_vid", "value": "demo-loyal", "url": demo_server.url},
            {"name": "mosaic_consent", "value": quote(refused), "url": demo_server.url},
        ]
    )
    sent = []
    page.on("request", lambda r: "/api/v1/events" in r.url and sent.append(r.post_data))
    page.goto(demo_server.url + "/")
    block = page.locator(RECS_BLOCK)
    block.wait_for()
    block.scroll_into_view_if_needed()
    # When an item is clicked
    block.locator("[data-sku] a").first.click()
    page.wait_for_url("https://shop.example/**")
    # Then the snippet sent no event at all (the events' consent rule)
    assert sent == []
