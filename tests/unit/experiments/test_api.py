"""`/api/v1/experiments`: create, start, stop, read, results JSON and CSV; secret key or staff;
bad input answers 4xx naming the field; documented in the OpenAPI schema."""

from __future__ import annotations

import csv
import io
import json

import pytest

from access import services as access_services
from experiments.models import Experiment, ExperimentMetric, ExperimentStatus
from experiments.results import results_compute
from tests.unit.experiments.conftest import make_metrics

URL = "/api/v1/experiments"


@pytest.fixture
def secret(db):
    _, raw = access_services.api_key_create(name="srv", kind="secret")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _post(client, url, body, auth):
    return client.post(url, data=json.dumps(body), content_type="application/json", **auth)


def _fields(response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


def _body(**overrides):
    body = {
        "key": "hero-test",
        "name": "Hero test",
        "placement": "hero",
        "arms": [
            {"key": "control", "variant": "hero-a", "is_control": True},
            {"key": "bold", "variant": "hero-b", "weight": 1},
        ],
        "metrics": [{"metric": "purchase", "role": "primary"}],
    }
    body.update(overrides)
    return body


@pytest.fixture
def metrics(db):
    return make_metrics()


def test_api__create_start_stop_read__lifecycle(client, hero, metrics, secret):
    # Given a valid body, When creating
    response = _post(client, URL, _body(), secret)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "draft"
    # When starting, Then running with a start time
    started = _post(client, f"{URL}/hero-test/start", {}, secret).json()
    assert started["status"] == "running"
    assert started["started_at"]
    # When stopping with a rollout, Then stopped with an end time and the rolled-out arm
    stopped = _post(client, f"{URL}/hero-test/stop", {"rollout_arm": "bold"}, secret).json()
    assert stopped["status"] == "stopped"
    assert stopped["ended_at"]
    assert stopped["rollout_arm"] == "bold"
    # And reading lists it
    assert client.get(f"{URL}/hero-test", **secret).json()["key"] == "hero-test"
    assert [e["key"] for e in client.get(URL, **secret).json()] == ["hero-test"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"placement": "nope"}, "placement"),
        ({"coverage": 2}, "coverage"),
        ({"key": "bad key!"}, "key"),
        ({"arms": [{"key": "control", "variant": "hero-a", "is_control": True}]}, "arms"),
        (
            {
                "arms": [
                    {"key": "control", "variant": "hero-a", "is_control": True},
                    {"key": "b", "variant": "missing"},
                ]
            },
            "arms[1].variant",
        ),
        (
            {
                "arms": [
                    {"key": "control", "variant": "hero-a", "is_control": True},
                    {"key": "b", "variant": "hero-a"},
                ]
            },
            "arms",
        ),
        (
            {
                "arms": [
                    {"key": "control", "variant": "hero-a"},
                    {"key": "b", "variant": "hero-b"},
                ]
            },
            "is_control",
        ),
        (
            {
                "arms": [
                    {"key": "control", "variant": "hero-a", "is_control": True},
                    {"key": "b", "variant": "hero-b", "weight": 0},
                ]
            },
            "weight",
        ),
        ({"metrics": [{"metric": "nope", "role": "primary"}]}, "metrics[0].metric"),
        ({"metrics": [{"metric": "purchase", "role": "secondary"}]}, "metrics"),
        ({"unexpected": 1}, "unexpected"),
        ({"planned_sample_size": -5}, "planned_sample_size"),
        ({"arms": "x"}, "arms"),
    ],
)
def test_api__bad_input__400_names_field_nothing_written(
    client, hero, metrics, secret, overrides, field
):
    response = _post(client, URL, _body(**overrides), secret)
    assert response.status_code == 400, response.content
    assert field in _fields(response)
    assert not Experiment.objects.exists()


def test_api__malformed_json__400_body(client, hero, secret):
    response = client.post(URL, data="{", content_type="application/json", **secret)
    assert response.status_code == 400
    assert _fields(response) == {"body"}


def test_api__no_key__401_or_403(client, hero, settings):
    settings.MOSAIC_REQUIRE_API_KEY = True
    assert client.get(URL).status_code in (401, 403)


def test_api__publishable_key__refused(client, hero):
    _, raw = access_services.api_key_create(name="web", kind="publishable")
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code in (401, 403)


def test_api__unknown_experiment__404_names_key(client, secret, db):
    response = client.get(f"{URL}/nope/results", **secret)
    assert response.status_code == 404
    assert _fields(response) == {"key"}


def test_api__stopped_cannot_start__400_names_status(client, hero, metrics, secret):
    _post(client, URL, _body(), secret)
    _post(client, f"{URL}/hero-test/stop", {}, secret)
    response = _post(client, f"{URL}/hero-test/start", {}, secret)
    assert response.status_code == 400
    assert "status" in _fields(response)


def test_api__rollout_unknown_arm__400_names_rollout_arm(client, hero, metrics, secret):
    _post(client, URL, _body(), secret)
    response = _post(client, f"{URL}/hero-test/stop", {"rollout_arm": "zzz"}, secret)
    assert response.status_code == 400
    assert _fields(response) == {"rollout_arm"}


def test_api__results_json_and_csv__from_stored_snapshot(client, hero, metrics, secret):
    # Given an experiment with a stored computation
    _post(client, URL, _body(), secret)
    _post(client, f"{URL}/hero-test/start", {}, secret)
    experiment = Experiment.objects.get(key="hero-test")
    assert ExperimentMetric.objects.filter(experiment=experiment).count() == 1
    results_compute(experiment=experiment)
    # When reading results as JSON, Then the snapshot and its history are returned
    body = client.get(f"{URL}/hero-test/results", **secret).json()
    assert body["data"]["arms"][0]["key"] == "control"
    assert len(body["history"]) == 1
    # And as CSV, one row per metric and arm with the columns documented
    response = client.get(f"{URL}/hero-test/results.csv", **secret)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["metric", "role", "arm"]
    assert {r[2] for r in rows[1:]} == {"control", "bold"}
    assert experiment.status == ExperimentStatus.RUNNING


def test_api__schema__documents_experiments_endpoints(client, secret, db):
    schema = client.get("/api/schema/", {"format": "json"}, **secret).json()
    assert "/api/v1/experiments" in schema["paths"]
    assert "/api/v1/experiments/{key}/results" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/experiments/{key}/stop"]


def test_api__plan__mde_and_sample_size(client, secret):
    # Given a 10 % rate, When asking the MDE at 14,749 per arm and the size for +10 %
    body = client.get(
        f"{URL}/plan", {"baseline": 0.1, "users_per_arm": 14749, "effect": 0.1}, **secret
    ).json()
    # Then both answers agree with each other (about +10 %, 14,749 per arm)
    assert body["users_per_arm"] == 14749
    assert body["minimum_detectable_effect"] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"baseline": 2, "users_per_arm": 10}, "baseline"),
        ({"baseline": 0.1}, "users_per_arm"),
        ({"baseline": 0.1, "effect": "x"}, "effect"),
        ({"baseline": 0.9, "effect": 0.5}, "effect"),
        ({"baseline": 0.1, "users_per_arm": 10, "power": 5}, "power"),
        ({"baseline": 0.1, "users_per_arm": 10, "junk": 1}, "junk"),
    ],
)
def test_api__plan__bad_input__400_names_field(client, secret, params, field):
    response = client.get(f"{URL}/plan", params, **secret)
    assert response.status_code == 400
    assert field in _fields(response)


def test_api__factorial__four_arms_over_two_placements(client, hero, promo_placement, secret):
    # Given two factors of two variants, When creating a multivariate experiment
    response = _post(
        client,
        URL,
        {
            "key": "mvt",
            "name": "Hero x promo",
            "factors": [
                {"placement": "hero", "variants": ["hero-a", "hero-b"]},
                {"placement": "promo", "variants": ["promo-a", "promo-b"]},
            ],
        },
        secret,
    )
    # Then one arm per combination, the first combination the control
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["extra_placements"] == ["promo"]
    assert len(body["arms"]) == 4
    assert body["arms"][0]["is_control"]
    assert body["arms"][3]["extra_variants"] == ["promo-b"]


@pytest.mark.parametrize(
    ("factors", "field"),
    [
        ([{"placement": "hero", "variants": ["hero-a", "hero-b"]}], "factors"),
        (
            [
                {"placement": "hero", "variants": ["hero-a", "hero-b"]},
                {"placement": "nope", "variants": ["a", "b"]},
            ],
            "factors[1].placement",
        ),
        (
            [
                {"placement": "hero", "variants": ["hero-a", "hero-b"]},
                {"placement": "promo", "variants": ["promo-a", "zzz"]},
            ],
            "factors[1].variants",
        ),
        (
            [
                {"placement": "hero", "variants": ["hero-a", "hero-b"]},
                {"placement": "hero", "variants": ["hero-a", "hero-c"]},
            ],
            "factors",
        ),
    ],
)
def test_api__factorial_bad__400_names_field(client, hero, promo_placement, secret, factors, field):
    response = _post(client, URL, {"key": "m", "name": "M", "factors": factors}, secret)
    assert response.status_code == 400, response.content
    assert field in _fields(response)
    assert not Experiment.objects.exists()
