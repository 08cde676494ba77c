"""The attribute analysis admin page in headless Chromium: heat map, bars and scree plot."""

from __future__ import annotations

import datetime as dt

import pytest

from analysis import services
from analysis.models import AttributeAnalysis

from .conftest import SCREENSHOTS, START, shop_create

pytestmark = [pytest.mark.slow, pytest.mark.browser]


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
