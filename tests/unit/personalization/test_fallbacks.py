"""Every fallback is visible: a reason code in the answer, a log line, and a counter at /metrics."""

from __future__ import annotations

import pytest

from access import services as access_services
from core import metrics
from tests.factories import make_placement, make_variant

URL = "/api/v1/decide"


def hero(client, **params):
    return client.get(URL, {"placements": "hero", "visitor": "x", **params}).json()


@pytest.mark.django_db
def test_render__over_budget__default_served_and_counted(client, settings):
    # Given a variant whose template is slow (a long sandboxed loop) and a tight budget
    settings.MOSAIC_RENDER_BUDGET_MS = 1
    placement = make_placement("hero")
    make_variant(
        placement, "slow", priority=1, template="{% for i in range(90000) %}{{ i }}{% endfor %}"
    )
    before = metrics.value("mosaic_render_over_budget_total", placement="hero")
    # When deciding
    answer = hero(client)["placements"]["hero"]
    # Then the default is served with the reason, and the counter moved
    assert answer["variant"] == "default"
    assert answer["reason"] == "fallback:render_over_budget"
    assert metrics.value("mosaic_render_over_budget_total", placement="hero") == before + 1


@pytest.mark.django_db
def test_render__within_budget__served(client, settings):
    settings.MOSAIC_RENDER_BUDGET_MS = 10_000
    placement = make_placement("hero")
    make_variant(
        placement, "fine", priority=1, template="{% for i in range(10) %}{{ i }}{% endfor %}"
    )
    assert hero(client)["placements"]["hero"]["reason"] == "targeted:fine"


@pytest.mark.django_db
def test_render__error_and_default_broken__empty_html_reason(client):
    placement = make_placement("hero", default_html="{{ 1 / 0 }}")
    make_variant(placement, "bad", priority=1, template="{{ nope.x.y() }}")
    answer = hero(client)["placements"]["hero"]
    assert (answer["variant"], answer["html"], answer["reason"]) == (
        None,
        "",
        "fallback:render_error",
    )


@pytest.mark.django_db
def test_metrics__fallbacks__exposed_as_prometheus_text(client):
    # Given one unknown placement asked for (the counters are per process: compare with before)
    before = metrics.value("mosaic_decide_fallbacks_total", reason="unknown_placement")
    client.get(URL, {"placements": "nowhere", "visitor": "x"})
    # When the operator scrapes /metrics
    response = client.get("/metrics")
    # Then the fallback is counted by reason
    assert response.status_code == 200
    text = response.content.decode()
    assert "# TYPE mosaic_decide_fallbacks_total counter" in text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith('mosaic_decide_fallbacks_total{reason="unknown_placement"')
    )
    assert float(line.rsplit(" ", 1)[1]) == before + 1
    assert "\nmosaic_exposures_lost_total " in text


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "explained"), [("secret", True), ("publishable", False)])
def test_decide__explain_with_key__secret_only(client, kind, explained):
    placement = make_placement("hero")
    make_variant(placement, "mobile", condition={"request.device": "mobile"})
    _, raw = access_services.api_key_create(name=kind, kind=kind)
    answer = client.get(
        URL,
        {"placements": "hero", "visitor": "x", "explain": "1"},
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    ).json()["placements"]["hero"]
    assert ("explain" in answer) is explained


@pytest.mark.django_db
def test_render__slow_first_compile__not_counted_against_the_budget(client, settings, monkeypatch):
    # Given a 20 ms budget and a template whose first compile in this process takes 60 ms
    # (a large template does), but whose render is quick
    import time

    from personalization import snapshot

    settings.MOSAIC_RENDER_BUDGET_MS = 20
    real_compiled = snapshot._template_compiled

    def slow_compiled(source):
        time.sleep(0.06)
        return real_compiled(source)

    monkeypatch.setattr(snapshot, "_template_compiled", slow_compiled)
    placement = make_placement("hero")
    make_variant(placement, "first", priority=1, template="<p>{{ 'first visitor' }}</p>")
    # When the first visitor is decided
    answer = hero(client)["placements"]["hero"]
    # Then the variant is served: compiling is not rendering
    assert answer["reason"] == "targeted:first"


@pytest.mark.django_db
def test_render__template_does_not_compile__default_with_render_error(client):
    # Given a variant whose template does not compile (stored without the admin's check)
    placement = make_placement("hero")
    make_variant(placement, "broken", priority=1, template="{% if %}")
    # When deciding, Then the default is served, saying why
    answer = hero(client)["placements"]["hero"]
    assert (answer["variant"], answer["reason"]) == ("default", "fallback:render_error")
