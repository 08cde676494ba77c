"""Propensity and cluster segment kinds on the segments run framework (runs in process)."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from analysis.model_segments import model_load, profile_model_scores_read
from analysis.models import ModelFile
from segments import runs
from segments.kinds import ConfigError, get_kind
from segments.models import Segment, SegmentMembership

from .conftest import START, shop_create

AS_OF = (START + dt.timedelta(days=170)).isoformat()


def _segment(key, kind, config):
    config = get_kind(kind).clean_config(config)
    return Segment.objects.create(key=key, name=key, kind=kind, config=config)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.django_db
def test_propensity_run__planted_rates__model_beats_baseline_scores_and_top_share(media):
    # Given the planted shop and a "purchase in the next 30 days" propensity segment
    rates = shop_create(n=600, start=START)
    segment = _segment(
        "buyers-30d",
        "propensity",
        {
            "target": {"event_type": "purchase", "window_days": 30},
            "model": "logistic_regression",
            "membership": {"top_share": 0.25},
            "as_of": AS_OF,
        },
    )
    # When it runs
    run = runs.segment_run(segment_id=segment.pk, trigger="command")
    # Then it trained on a time split, beat the recency baseline and was activated
    m = run.metrics
    assert run.status == "succeeded", run.errors
    assert m["split"]["mode"] == "time"
    assert m["metrics"]["auc"] > m["baseline"]["auc"]
    assert m["activated"]
    assert m["model_version"] == m["scoring_version"] == 1
    # And the model file is in storage, loadable, and named by the run
    record = ModelFile.objects.get(segment_key="buyers-30d", version=1)
    assert default_storage.exists(record.file.name)
    assert record.file.name == m["model_file"]
    assert model_load(record).model_name == "logistic_regression"
    # And every scored profile holds its score; the top quarter are members, mostly heavy buyers
    scores = profile_model_scores_read(segment_key="buyers-30d")
    assert len(scores) == m["scored"] > 500
    members = set(
        SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)
    )
    assert len(members) == pytest.approx(0.25 * len(scores), abs=2)
    assert min(scores[p] for p in members) >= max(s for p, s in scores.items() if p not in members)
    heavy = sum(rates[p] == 0.15 for p in members) / len(members)
    assert heavy > 0.6


@pytest.mark.django_db
def test_propensity_run__no_positive_in_window__failed_with_reason(media):
    # Given a propensity segment whose target event nobody ever has
    shop_create(n=200, start=START)
    segment = _segment(
        "searchers",
        "propensity",
        {
            "target": {"event_type": "search", "window_days": 30},
            "as_of": AS_OF,
        },
    )
    # When it runs, the split has no positive: the run fails, saying why, and nothing changes
    with pytest.raises(ValueError, match="positives"):
        runs.segment_run(segment_id=segment.pk, trigger="command")
    run = segment.runs.get()
    assert run.status == "failed"
    assert "positives" in run.errors[0]
    assert not SegmentMembership.objects.filter(segment=segment).exists()


@pytest.mark.django_db
def test_propensity_run__not_beating_baseline__flagged_and_previous_kept(media):
    # Given an activated propensity segment
    shop_create(n=400, start=START)
    config = {
        "target": {"event_type": "purchase", "window_days": 30},
        "model": "logistic_regression",
        "membership": {"threshold": 0.3},
        "as_of": AS_OF,
    }
    segment = _segment("buyers", "propensity", config)
    first = runs.segment_run(segment_id=segment.pk, trigger="command")
    assert first.metrics["activated"]
    before = set(
        SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)
    )
    scores_before = profile_model_scores_read(segment_key="buyers")
    # When it is retrained on recency alone (the baseline's own model: it cannot beat it)
    segment.config = get_kind("propensity").clean_config({**config, "features": ["recency_days"]})
    segment.save()
    second = runs.segment_run(segment_id=segment.pk, trigger="command")
    # Then the run is flagged, not activated, and version 1 still scores the same members
    m = second.metrics
    assert second.status == "succeeded"
    assert not m["beats_baseline"]
    assert not m["activated"]
    assert m["kept_previous"]
    assert (m["model_version"], m["scoring_version"]) == (2, 1)
    assert (
        set(SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True))
        == before
    )
    assert profile_model_scores_read(segment_key="buyers") == scores_before


@pytest.mark.django_db
def test_cluster_run__planted_rates__clusters_member_segments_and_labels(media):
    # Given the shop clustered on RFM features as of a day in its history
    shop_create(n=300, start=START)
    parent = _segment("rfm-groups", "cluster", {"k_range": [2, 5], "as_of": AS_OF})
    # When the cluster segment runs
    run = runs.segment_run(segment_id=parent.pk, trigger="admin")
    # Then silhouette, Davies-Bouldin and inertia are recorded per k, ARI too
    assert run.status == "succeeded", run.errors
    m = run.metrics
    assert [r["k"] for r in m["per_k"]] == [2, 3, 4, 5]
    assert m["stability"]["min"] > 0.5
    assert len(m["pca"]["points"]) == run.size
    # And one member segment per cluster exists, named from its description
    children = Segment.objects.filter(kind="cluster_member").order_by("key")
    assert children.count() == m["k"]
    assert all(c.description for c in children)
    # And running a child gives exactly the profiles labelled with its cluster
    for child in children:
        runs.segment_run(segment_id=child.pk, trigger="command")
    labels = profile_model_scores_read(segment_key="rfm-groups")
    for child in children:
        got = set(
            SegmentMembership.objects.filter(segment=child).values_list("profile_id", flat=True)
        )
        assert got == {p for p, v in labels.items() if v == child.config["label"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        (
            "propensity",
            {"target": {"event_type": "nope", "window_days": 3}},
            "config.target.event_type",
        ),
        (
            "propensity",
            {"target": {"event_type": "purchase", "window_days": 0}},
            "config.target.window_days",
        ),
        (
            "propensity",
            {"target": {"event_type": "purchase", "window_days": 9}, "model": "oracle"},
            "config.model",
        ),
        (
            "propensity",
            {
                "target": {"event_type": "purchase", "window_days": 9},
                "membership": {"threshold": 0.5, "top_share": 0.1},
            },
            "config.membership",
        ),
        (
            "propensity",
            {"target": {"event_type": "purchase", "window_days": 9}, "features": ["frequency"]},
            "config.features",
        ),
        ("cluster", {"k_range": [1, 99]}, "config.k_range"),
        ("cluster", {"features": ["frequency", "bogus"]}, "config.features[1]"),
        ("cluster", {"method": "magic"}, "config.method"),
        ("cluster", {"as_of": "tomorrow"}, "config.as_of"),
        ("cluster", {"zzz": 1}, "config.zzz"),
    ],
)
def test_clean_config__absurd__refused_naming_the_field(kind, config, field):
    with pytest.raises(ConfigError) as caught:
        get_kind(kind).clean_config(config)
    assert caught.value.field == field


@pytest.mark.django_db
def test_segment_run_command__cluster__json_run_record_with_per_k(media):
    # Given a cluster segment on the shop
    shop_create(n=200, start=START)
    _segment("groups", "cluster", {"k_range": [2, 4], "as_of": AS_OF})
    out = io.StringIO()
    # When running it from the command line with --json
    call_command("segment_run", "groups", "--json", stdout=out)
    # Then the printed run record holds the quality figures per k
    record = json.loads(out.getvalue())
    assert record["status"] == "succeeded"
    assert [r["k"] for r in record["metrics"]["per_k"]] == [2, 3, 4]


@pytest.mark.django_db
def test_segments_api__model_kinds__created_with_config_and_schema_examples(staff_client):
    # When creating a propensity segment with an absurd window through the segment API
    bad = staff_client.post(
        "/api/v1/segments",
        json.dumps(
            {
                "key": "p",
                "name": "p",
                "kind": "propensity",
                "config": {"target": {"event_type": "purchase", "window_days": -4}},
            }
        ),
        content_type="application/json",
    )
    # Then it is refused naming the field, and the schema documents both model kinds
    assert bad.status_code == 400
    assert "config.target.window_days" in {e["field"] for e in bad.json()["errors"]}
    schema = staff_client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "RFM groups (cluster)" in schema
    assert "Buys in the next 90 days (propensity)" in schema


@pytest.mark.django_db
def test_scheduled_runs__model_younger_than_retrain_hours__rescore_and_assign_new(media):
    # Given a propensity and a cluster segment trained by a command run
    shop_create(n=300, start=START)
    prop = _segment(
        "buyers",
        "propensity",
        {
            "target": {"event_type": "purchase", "window_days": 30},
            "model": "logistic_regression",
            "membership": {"top_share": 0.2},
            "as_of": AS_OF,
        },
    )
    groups = _segment("groups", "cluster", {"k_range": [2, 4], "as_of": AS_OF})
    runs.segment_run(segment_id=prop.pk, trigger="command")
    first = runs.segment_run(segment_id=groups.pk, trigger="command")
    # And new customers who arrive afterwards
    newcomers = shop_create(
        n=20, seed=9, start=START + dt.timedelta(days=100), days=60, prefix="late"
    )
    # When the schedule runs both again within retrain_hours
    p2 = runs.segment_run(segment_id=prop.pk, trigger="schedule")
    g2 = runs.segment_run(segment_id=groups.pk, trigger="schedule")
    # Then neither retrains: the propensity model scores everyone again (newcomers included)
    assert p2.metrics["retrained"] is False
    assert p2.metrics["scoring_version"] == 1
    assert ModelFile.objects.filter(segment_key="buyers").count() == 1
    scores = profile_model_scores_read(segment_key="buyers")
    assert set(newcomers) <= set(scores)
    # And the newcomers get the nearest existing cluster, the others keep theirs
    assert g2.metrics["retrained"] is False
    assert g2.metrics["assigned_new"] == len(newcomers)
    assert g2.metrics["k"] == first.metrics["k"]
    labels = profile_model_scores_read(segment_key="groups")
    assert set(newcomers) <= set(labels)
    assert set(labels.values()) <= set(range(first.metrics["k"]))


@pytest.mark.django_db
def test_segment_deleted__model_files_and_scores__removed(media):
    # Given a propensity segment that has run: a model file in storage, scores on profiles
    shop_create(n=200, start=START)
    segment = _segment(
        "gone",
        "propensity",
        {
            "target": {"event_type": "purchase", "window_days": 30},
            "model": "logistic_regression",
            "as_of": AS_OF,
        },
    )
    runs.segment_run(segment_id=segment.pk, trigger="command")
    name = ModelFile.objects.get(segment_key="gone").file.name
    assert default_storage.exists(name)
    assert profile_model_scores_read(segment_key="gone")
    # When the segment is deleted
    segment.delete()
    # Then its model files and its scores on profiles are gone too
    assert not default_storage.exists(name)
    assert not ModelFile.objects.filter(segment_key="gone").exists()
    assert profile_model_scores_read(segment_key="gone") == {}
