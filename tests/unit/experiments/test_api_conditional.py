"""Experiment management API against lost updates: GET answers an ETag (of the setup, arms,
metric links and status); PUT, PATCH and DELETE need If-Match (428 without, 412 stale); a PUT
repeating the current state changes nothing; start/pause/stop take an optional If-Match; the
lifecycle rules hold over PUT (a running experiment's weights: sticky or a new seed); roles:
Experimenters edit experiments, Analysts and Editors only read them."""

from __future__ import annotations

import pytest

from experiments.lifecycle import experiment_set_status, experiment_update
from experiments.models import Experiment, ExperimentStatus
from tests.unit.experiments.conftest import make_metrics

URL = "/api/v1/experiments/hero-test"
BODY = {
    "name": "Hero test",
    "placement": "hero",
    "arms": [
        {"key": "control", "variant": "hero-a", "is_control": True},
        {"key": "bold", "variant": "hero-b", "weight": 1},
    ],
    "metrics": [{"metric": "purchase", "role": "primary"}],
}


@pytest.fixture
def experimenter(role_client):
    return role_client("Experimenter")


@pytest.fixture
def hero_test(hero, experimenter) -> Experiment:
    make_metrics()
    created = experimenter.post("/api/v1/experiments", {"key": "hero-test", **BODY}, format="json")
    assert created.status_code == 201, created.content
    return Experiment.objects.get(key="hero-test")


def _weights(body: dict, bold: float) -> dict:
    arms = [dict(arm) for arm in body["arms"]]
    arms[1]["weight"] = bold
    return {**body, "arms": arms}


def test_experiment_api_create__201_etag_equals_read_and_revision_by_caller(
    experimenter, hero_test
):
    # Given an experiment created through the API (fixture)
    # When read with GET, and with HEAD (as the docs' curl example does)
    etag = experimenter.get(URL)["ETag"]
    # Then both carry the same quoted ETag, and the creation is a revision by the caller
    assert etag.startswith('"')
    assert experimenter.head(URL)["ETag"] == etag
    assert hero_test.revisions.get().author == "experimenter"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_experiment_api_write__no_if_match__428(experimenter, hero_test, method):
    response = getattr(experimenter, method)(URL, _weights(BODY, 3), format="json")
    assert response.status_code == 428
    assert response.json()["errors"][0]["field"] == "If-Match"
    assert Experiment.objects.filter(key="hero-test").exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_experiment_api_write__stale_after_admin_change__412_current_etag(
    experimenter, hero_test, method
):
    # Given a client's read, then a change elsewhere (the eligibility, which the API does not
    # show but which the ETag covers)
    stale = experimenter.get(URL)["ETag"]
    experiment_update(
        experiment=hero_test, fields={"condition": {"request.device": "mobile"}}, author="bob"
    )
    # When the client writes with its stale tag
    response = getattr(experimenter, method)(
        URL, _weights(BODY, 3), format="json", HTTP_IF_MATCH=stale
    )
    # Then 412 with the current ETag; nothing written
    assert response.status_code == 412
    assert response["ETag"] == experimenter.get(URL)["ETag"] != stale
    assert hero_test.arms.get(key="bold").weight == 1


def test_experiment_api_put__fresh__weights_saved_new_etag_revision(experimenter, hero_test):
    etag = experimenter.get(URL)["ETag"]
    # When the weights are replaced with a fresh tag
    response = experimenter.put(URL, _weights(BODY, 3), format="json", HTTP_IF_MATCH=etag)
    # Then saved, a new ETag, a revision by the caller
    assert response.status_code == 200, response.content
    assert [a["weight"] for a in response.json()["arms"]] == [1.0, 3.0]
    assert response["ETag"] != etag
    assert response["ETag"] == experimenter.get(URL)["ETag"]
    assert hero_test.revisions.first().author == "experimenter"
    assert hero_test.revisions.count() == 2


def test_experiment_api_put__repeats_current_state__200_nothing_written(experimenter, hero_test):
    # Given a stale tag (the experiment was started since)
    stale = experimenter.get(URL)["ETag"]
    experiment_set_status(experiment=hero_test, status=ExperimentStatus.RUNNING, author="bob")
    revisions = hero_test.revisions.count()
    updated_at = Experiment.objects.get(pk=hero_test.pk).updated_at
    # When the current setup is PUT again (a retry)
    response = experimenter.put(URL, BODY, format="json", HTTP_IF_MATCH=stale)
    # Then 200 and nothing written
    assert response.status_code == 200, response.content
    assert hero_test.revisions.count() == revisions
    assert Experiment.objects.get(pk=hero_test.pk).updated_at == updated_at


def test_experiment_api_patch__running_not_sticky_weights__400_names_seed(experimenter, hero_test):
    # Given a running, non-sticky experiment
    experiment_set_status(experiment=hero_test, status=ExperimentStatus.RUNNING)
    etag = experimenter.get(URL)["ETag"]
    # When its weights are changed without a new seed
    response = experimenter.patch(
        URL, {"arms": _weights(BODY, 3)["arms"]}, format="json", HTTP_IF_MATCH=etag
    )
    # Then refused naming the seed; with a new seed it is allowed
    assert response.status_code == 400
    assert "seed" in {e["field"] for e in response.json()["errors"]}
    allowed = experimenter.patch(
        URL,
        {"arms": _weights(BODY, 3)["arms"], "seed": "v2"},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert allowed.status_code == 200, allowed.content


def test_experiment_api_patch__key_change__400_names_key(experimenter, hero_test):
    etag = experimenter.get(URL)["ETag"]
    response = experimenter.patch(URL, {"key": "other"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "key"


def test_experiment_api_delete__running__409_then_stopped_204(experimenter, hero_test):
    experiment_set_status(experiment=hero_test, status=ExperimentStatus.RUNNING)
    refused = experimenter.delete(URL, HTTP_IF_MATCH=experimenter.get(URL)["ETag"])
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["field"] == "status"
    experiment_set_status(experiment=hero_test, status=ExperimentStatus.STOPPED)
    deleted = experimenter.delete(URL, HTTP_IF_MATCH=experimenter.get(URL)["ETag"])
    assert deleted.status_code == 204
    assert not Experiment.objects.filter(key="hero-test").exists()


def test_experiment_api_start__stale_if_match__412_fresh_200(experimenter, hero_test):
    stale = experimenter.get(URL)["ETag"]
    experiment_update(experiment=hero_test, fields={"coverage": 0.5}, author="bob")
    refused = experimenter.post(f"{URL}/start", {}, format="json", HTTP_IF_MATCH=stale)
    assert refused.status_code == 412
    fresh = refused["ETag"]
    started = experimenter.post(f"{URL}/start", {}, format="json", HTTP_IF_MATCH=fresh)
    assert started.status_code == 200
    assert started.json()["status"] == "running"
    assert hero_test.revisions.first().state["status"] == "running"


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        ("Experimenter", 200, 200),
        ("Admin", 200, 200),
        ("Analyst", 200, 403),
        ("Editor", 200, 403),
        ("Privacy officer", 403, 403),
    ],
)
def test_experiment_api__role__reads_and_writes_as_its_permissions(
    role_client, experimenter, hero_test, role, read, write
):
    etag = experimenter.get(URL)["ETag"]
    client = role_client(role)
    got = client.get(URL)
    patched = client.patch(URL, {"coverage": 0.5}, format="json", HTTP_IF_MATCH=etag)
    assert got.status_code == read
    assert patched.status_code == write, patched.content
    if write == 403:
        assert Experiment.objects.get(key="hero-test").coverage == 1.0


def test_experiment_api_schema__put_patch_delete_if_match_412_documented(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = schema["paths"]["/api/v1/experiments/{key}"]
    for method in ("put", "patch", "delete"):
        names = {p["name"]: p for p in operations[method]["parameters"]}
        assert names["If-Match"]["required"] is True
        assert {"412", "428"} <= set(operations[method]["responses"])
    assert operations["put"]["requestBody"]["content"]["application/json"]["examples"]
    assert "ETag" in operations["get"]["responses"]["200"]["headers"]


JUNK = [
    [],
    "x",
    {"arms": [{}]},
    {"arms": "x"},
    {"arms": [{"key": "a"}, {"key": "b"}]},
    {"metrics": [{}]},
    {"metrics": [{"metric": "nope", "role": "primary"}]},
    {"arms": [{"key": "a", "variant": "nope"}, {"key": "b", "variant": "hero-b"}]},
    {"arms": [{"key": "a", "variant": "hero-a", "extra_variants": ["zz"]}] * 2},
    {"placement": "nope"},
    {"placement": None},
    {"coverage": "NaN"},
    {"coverage": 1e308},
    {"seed": None},
    {"status": "running"},
    {"name": "\u0000"},
]


@pytest.mark.parametrize("body", JUNK)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_experiment_api_write__junk_body__4xx_naming_a_field_never_500(
    experimenter, hero_test, method, body
):
    # When junk is written over a deliberate If-Match: *
    response = getattr(experimenter, method)(URL, body, format="json", HTTP_IF_MATCH="*")
    # Then a 4xx whose errors name their fields; the experiment is unchanged
    assert 400 <= response.status_code < 500, response.content
    assert all(e["field"] and e["message"] for e in response.json()["errors"])
    assert hero_test.revisions.count() == 1
