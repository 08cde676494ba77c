"""The attribute analysis admin page in headless Chromium: heat map, bars and scree plot."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from analysis import services
from analysis.models import AttributeAnalysis

from .conftest import START, shop_create

CHROMIUM = Path(os.environ.get("MOSAIC_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = [pytest.mark.slow]


@pytest.fixture
def browser_page(live_server, transactional_db):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found")
    sync_api = pytest.importorskip("playwright.sync_api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(15_000)
            yield page
            browser.close()


def test_admin_analysis_page__succeeded_run__heat_map_and_three_charts_drawn(
    browser_page, live_server, django_user_model
):
    # Given a finished analysis of the planted shop, and a staff user
    shop_create(n=200)
    analysis = AttributeAnalysis.objects.create(
        target={"event_type": "purchase", "window_days": 30},
        attributes=[
            "recency_days",
            "frequency",
            "monetary",
            "tenure_days",
            "count.page_view",
            "affinity.jazz",
        ],
        as_of=START + dt.timedelta(days=120),
    )
    services.attribute_analysis_run(analysis_id=analysis.pk)
    django_user_model.objects.create_user(
        "ana", password="pw-ana-1234", is_staff=True, is_superuser=True
    )
    page = browser_page
    # When the analyst signs in and opens the run's page
    page.goto(
        f"{live_server.url}/admin/login/?next=/admin/analysis/attributeanalysis/"
        f"{analysis.pk}/change/"
    )
    page.fill("#id_username", "ana")
    page.fill("#id_password", "pw-ana-1234")
    page.click("input[type=submit]")
    page.wait_for_selector("#heat-map")
    # Then the heat map has a coloured cell per pair and the three charts were drawn
    assert page.locator("#heat-map td").count() == 36
    drawn = page.evaluate(
        "['chart-statistic', 'chart-mi', 'chart-scree'].map("
        "id => !!Chart.getChart(document.getElementById(id)))"
    )
    assert drawn == [True, True, True]
    colours = page.eval_on_selector_all(
        "#heat-map td", "cells => new Set(cells.map(c => c.style.background)).size"
    )
    assert colours > 3
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-attribute-analysis.png"), full_page=True)
