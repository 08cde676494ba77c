"""An attribute analysis posted to the API is run by a real Celery worker."""

from __future__ import annotations

import json

import pytest

from analysis.models import AttributeAnalysis, RunState
from tests.conftest import wait_for

from .conftest import shop_create
from .test_api import GOOD, URL

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_post_analysis__real_worker__run_record_succeeds_with_results(staff_client, celery_worker):
    # Given the shop in the database and a worker
    shop_create(n=120)
    body = {**GOOD, "attributes": ["recency_days", "frequency", "monetary"]}
    # When an analyst posts an analysis
    response = staff_client.post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 202
    pk = response.json()["id"]
    # Then the worker runs it and the record holds the results and its numbers
    done = wait_for(
        lambda: AttributeAnalysis.objects.filter(pk=pk, status=RunState.SUCCEEDED).first(),
        timeout=90,
        message=celery_worker.output(),
    )
    assert done.profiles > 100
    assert done.duration_ms is not None
    assert {t["attribute"] for t in done.results["tests"]} == set(body["attributes"])
