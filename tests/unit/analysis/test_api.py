"""/api/v1/analysis/attributes: validation naming the field, access, results as JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from access import services as access_services
from analysis import services
from analysis.models import AttributeAnalysis, RunState
from profiles.models import Event

from .conftest import START

URL = "/api/v1/analysis/attributes"
GOOD = {
    "target": {"event_type": "purchase", "window_days": 30},
    "attributes": ["recency_days", "frequency", "monetary", "count.page_view", "trait.plan"],
    "as_of": (START + dt.timedelta(days=120)).isoformat(),
    "threshold": 0.8,
}


def post(client, body, **extra):
    return client.post(URL, json.dumps(body), content_type="application/json", **extra)


@pytest.fixture
def plan_trait(db):
    from identity.models import TraitDefinition

    TraitDefinition.objects.create(name="plan", type="string")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"attributes": ["frequency", "window.purchase.0d"]}, "attributes[1]"),
        ({"attributes": ["trait.secret"]}, "attributes[0]"),
        ({"attributes": []}, "attributes"),
        ({"attributes": ["frequency"] * 61}, "attributes"),
        ({"target": {"event_type": "purchase"}}, "target.window_days"),
        ({"target": {"event_type": "teleport", "window_days": 3}}, "target.event_type"),
        ({"target": {"trait": "nope"}}, "target.trait"),
        ({"target": {}}, "target.event_type"),
        ({"threshold": 7}, "threshold"),
        ({"as_of": "2999-01-01T00:00:00Z"}, "as_of"),
        ({"as_of": "yesterday"}, "as_of"),
    ],
)
def test_post__absurd_field__400_naming_it_and_nothing_stored(
    staff_client, plan_trait, change, field
):
    # Given a staff session and a request with one absurd field
    # When posting it
    response = post(staff_client, {**GOOD, **change})
    # Then it is refused with the field named, and no analysis is recorded
    assert response.status_code == 400, response.content
    assert field in {e["field"] for e in response.json()["errors"]}
    assert not AttributeAnalysis.objects.exists()


@pytest.mark.django_db
def test_post__publishable_key__403(client):
    _, raw = access_services.api_key_create(name="web", kind="publishable")
    response = post(client, GOOD, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == "api_key"


@pytest.mark.django_db
def test_post__secret_key__queued_then_run_results_as_json(
    client, shop, plan_trait, django_capture_on_commit_callbacks
):
    # Given a secret key and the shop's planted buyers
    _, raw = access_services.api_key_create(name="server", kind="secret")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    # When posting an analysis (the task is enqueued on commit; run here by the service)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, GOOD, **auth)
    assert response.status_code == 202
    assert len(callbacks) == 1
    created = response.json()
    assert created["status"] == RunState.QUEUED
    services.attribute_analysis_run(analysis_id=created["id"], chunk=50)
    # Then the detail answers the results: frequency matters more than page views' noise
    doc = client.get(created["url"], **auth).json()
    assert doc["status"] == RunState.SUCCEEDED
    seen = Event.objects.filter(occurred_at__lte=GOOD["as_of"]).values("profile").distinct().count()
    assert doc["profiles"] == seen > 250  # the profiles with an event by as_of
    tests = {t["attribute"]: t for t in doc["results"]["tests"]}
    assert tests["frequency"]["p_value"] < 1e-6
    assert tests["trait.plan"]["test"] == "chi2"
    # frequency and page views are the same count here (one view per purchase): redundant
    pairs = {(p["a"], p["b"]) for p in doc["results"]["correlations"]["redundant_pairs"]}
    assert ("frequency", "count.page_view") in pairs
    assert len(doc["results"]["pca"]["explained_variance_ratio"]) == 4
    # And the list shows it without the results
    listed = client.get(URL, **auth).json()["results"]
    assert listed[0]["id"] == created["id"]
    assert "results" not in listed[0]


@pytest.mark.django_db
def test_run__no_profile_before_as_of__failed_with_reason(staff_client):
    analysis = AttributeAnalysis.objects.create(
        target={"event_type": "purchase", "window_days": 30},
        attributes=["frequency"],
        as_of=START,
    )
    done = services.attribute_analysis_run(analysis_id=analysis.pk)
    assert done.status == RunState.FAILED
    assert "no profile" in done.errors[0]
    assert staff_client.get(f"{URL}/{analysis.pk + 99}").status_code == 404


@pytest.mark.django_db
def test_schema__documents_the_analysis_endpoint(staff_client):
    schema = staff_client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/analysis/attributes" in schema
    assert "Purchase in the next 90 days" in schema
