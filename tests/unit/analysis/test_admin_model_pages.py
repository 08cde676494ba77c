"""Model segment admin pages in headless Chromium: cluster and propensity charts, run now."""

from __future__ import annotations

import pytest

from segments import runs
from segments.kinds import get_kind
from segments.models import Segment

from .conftest import SCREENSHOTS, shop_create
from .test_model_kinds import AS_OF

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _login(page, live_server, path):
    page.goto(f"{live_server.url}/admin/login/?next={path}")
    page.fill("#id_username", "ana")
    page.fill("#id_password", "pw-ana-1234")
    page.click("input[type=submit]")


def _drawn(page, ids):
    return page.evaluate(f"{ids!r}.map(id => !!Chart.getChart(document.getElementById(id)))")


def test_admin_model_segments__cluster_and_propensity__charts_drawn_and_run_now_queues(
    browser_page,
    live_server,
    django_user_model,
    settings,
    tmp_path,
):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Given a cluster and a propensity segment that have run on the planted shop
    shop_create(n=400)
    made = {}
    for key, kind, config in [
        ("rfm-groups", "cluster", {"k_range": [2, 6], "as_of": AS_OF}),
        (
            "buy-soon",
            "propensity",
            {
                "target": {"event_type": "purchase", "window_days": 30},
                "model": "gradient_boosting",
                "as_of": AS_OF,
            },
        ),
    ]:
        made[key] = Segment.objects.create(
            key=key, name=key, kind=kind, config=get_kind(kind).clean_config(config)
        )
        assert runs.segment_run(segment_id=made[key].pk, trigger="command").status == "succeeded"
    django_user_model.objects.create_user(
        "ana", password="pw-ana-1234", is_staff=True, is_superuser=True
    )
    page = browser_page
    # When the analyst opens the cluster segment's page
    _login(page, live_server, f"/admin/analysis/modelsegment/{made['rfm-groups'].pk}/change/")
    page.wait_for_selector("#chart-pca")
    # Then the per-k quality, elbow, stability and PCA charts are drawn
    assert _drawn(page, ["chart-quality", "chart-elbow", "chart-ari", "chart-pca"]) == [True] * 4
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-cluster-segment.png"), full_page=True)
    # And on the propensity segment's page: figures beside the baseline, calibration,
    # importances and the score histogram
    page.goto(f"{live_server.url}/admin/analysis/modelsegment/{made['buy-soon'].pk}/change/")
    page.wait_for_selector("#chart-calibration")
    assert _drawn(page, ["chart-calibration", "chart-importance", "chart-histogram"]) == [True] * 3
    assert "Baseline" in page.inner_text("#model-figures")
    page.screenshot(path=str(SCREENSHOTS / "admin-propensity-segment.png"), full_page=True)
    # When "Run now" is pressed, a run is queued and the page says so
    page.click("#run-now")
    page.wait_for_selector("text=Run queued")
