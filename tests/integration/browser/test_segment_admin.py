"""The segment admin in headless Chromium: list, detail with charts and the RFM grid, overlap."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from segments import kpis
from segments.models import Segment

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def staff_page(page, demo_server):
    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    kpis.segments_kpis_refresh(days=3)
    page.goto(f"{demo_server.url}/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-123")
    page.click("input[type=submit]")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.js_errors = errors
    return page


def test_segment_admin__list__kind_size_trend_last_run_warnings(
    staff_page, demo_server, screenshot
):
    # When the segment list is opened
    staff_page.goto(f"{demo_server.url}/admin/segments/segment/")
    screenshot("admin-segments-list")
    # Then each segment shows its kind, size, a trend sparkline, its last run and warnings
    row = staff_page.locator("#result_list tr", has_text="win-back")
    assert "RFM score" in row.inner_text()
    assert "succeeded" in row.inner_text()
    assert row.locator("svg.seg-spark").count() == 1
    assert "too small" in row.inner_text()
    assert staff_page.js_errors == []


def test_segment_admin__rfm_detail__grid_and_charts_render(staff_page, demo_server, screenshot):
    segment = Segment.objects.get(key="win-back")
    staff_page.goto(f"{demo_server.url}/admin/segments/segment/{segment.pk}/change/")
    # Then the R x F heat map counts every scored customer, and the four charts are drawn
    grid = staff_page.locator("#segment-rfm-grid")
    assert "Lost" in grid.inner_text()
    assert grid.locator("td.chosen").count() == 10  # at risk, can't lose them, hibernating, lost
    staff_page.wait_for_function("window.Chart && Object.keys(Chart.instances).length === 4")
    screenshot("admin-segment-rfm")
    assert staff_page.js_errors == []


def test_segment_admin__overlap__jaccard_table(staff_page, demo_server, screenshot):
    staff_page.goto(f"{demo_server.url}/admin/segments/segment/overlap/")
    screenshot("admin-segments-overlap")
    cells = staff_page.locator("table.seg-overlap td")
    active = Segment.objects.filter(is_active=True).count()
    assert cells.count() == active * active
    assert staff_page.js_errors == []
