"""The admin results page: per-arm table, interval bars, SRM and peeking banners, guardrail
flags, CUPED toggle, lift chart data, planning calculator; no results computed on page load."""

from __future__ import annotations

import json

import pytest

from experiments.demo import demo_experiment_seed
from experiments.models import ResultSnapshot
from experiments.results import results_compute
from tests.factories import make_placement


@pytest.fixture
def demo(db):
    placement = make_placement("hero")
    return demo_experiment_seed(visitors=600, seed=3), placement


def _page(admin_client, experiment, **params):
    url = f"/admin/experiments/experiment/{experiment.pk}/results/"
    response = admin_client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def test_results_page__demo__table_bars_chart_and_no_query_of_exposures(
    admin_client, demo, django_assert_max_num_queries
):
    experiment, _ = demo
    # Given 14 stored computations
    assert ResultSnapshot.objects.filter(experiment=experiment).count() == 14
    # When the page is read (a bounded number of queries: stored snapshots only)
    with django_assert_max_num_queries(12):
        html = _page(admin_client, experiment)
    # Then the per-metric tables with their interval bars and the chart's data are there
    assert "Purchase" in html
    assert "GUARDRAIL" in html.upper()
    assert 'class="xr-ci' in html
    assert "vendor/chart.js/chart.umd.js" in html
    history = json.loads(html.split('id="lift-history" type="application/json">')[1].split("<")[0])
    assert len(history) == 14
    assert "bold" in history[-1]["lifts"]


def test_results_page__cuped_toggle__changes_interval(admin_client, demo):
    experiment, _ = demo
    on = _page(admin_client, experiment, cuped="1")
    off = _page(admin_client, experiment, cuped="0")
    assert "CUPED on (pre-exposure" in on
    assert "CUPED off" in off
    assert on != off


def test_results_page__srm__banner(admin_client, demo):
    experiment, _ = demo
    snapshot = ResultSnapshot.objects.filter(experiment=experiment).order_by("-computed_at")[0]
    snapshot.data = {**snapshot.data, "srm_warning": True}
    snapshot.srm_p_value = 0.0001
    snapshot.save()
    assert 'id="srm-banner"' in _page(admin_client, experiment)


def test_results_page__before_planned_size__peeking_banner(admin_client, demo):
    experiment, _ = demo
    assert 'id="peek-banner"' not in _page(admin_client, experiment)
    experiment.planned_sample_size = 100_000
    experiment.save()
    assert 'id="peek-banner"' in _page(admin_client, experiment)
    # A sequential analysis may be read any day: no warning once computed that way
    experiment.engine = "sequential"
    experiment.save()
    results_compute(experiment=experiment)
    assert 'id="peek-banner"' not in _page(admin_client, experiment)


def test_results_page__guardrail_flagged__shown(admin_client, demo):
    experiment, _ = demo
    snapshot = ResultSnapshot.objects.filter(experiment=experiment).order_by("-computed_at")[0]
    data = snapshot.data
    data["metrics"][2]["guardrail_flagged"] = ["bold"]
    snapshot.data = data
    snapshot.save()
    html = _page(admin_client, experiment)
    assert "Guardrail Cart removals moved the wrong way in arm bold" in html


def test_results_page__planning__mde_and_sample_size(admin_client, demo):
    experiment, _ = demo
    html = _page(
        admin_client, experiment, baseline="0.1", users_per_arm="14749", effect="0.1", power="0.8"
    )
    assert 'id="plan-mde">Minimum detectable relative effect: <strong>0.1000' in html
    assert 'id="plan-n">Users per arm for that effect: <strong>14749' in html
    bad = _page(admin_client, experiment, baseline="7", users_per_arm="100", power="0.8")
    assert "A conversion rate must be between 0 and 1." in bad


def test_results_page__no_results_yet__says_so(admin_client, demo):
    experiment, _ = demo
    ResultSnapshot.objects.all().delete()
    assert "No results yet" in _page(admin_client, experiment)
