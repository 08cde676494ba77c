"""Training runs from the events table: evaluated, activated, written where decide reads."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from core.pseudonym import pseudonymize
from profiles.models import Profile
from profiles.selectors import profile_cache_key
from recommendations import services
from recommendations.models import RunStatus, SimilarItems, TrainingRun, VisitorRecommendation

FAST = {"MOSAIC_RECS_TUNING_SECONDS": 5.0}


@pytest.mark.django_db
@override_settings(**FAST)
def test_training_run__planted_tastes__activated_with_figures_and_outputs(
    shop, redis_client, django_capture_on_commit_callbacks
):
    # Given a shop whose visitors have planted tastes (fixture `shop`)
    # When training
    with django_capture_on_commit_callbacks(execute=True):
        run = services.training_run(threads=1)
    # Then the run beat popularity on the test part and was activated
    run.refresh_from_db()
    assert run.status == RunStatus.ACTIVE, run.note
    assert run.beats_baseline is True
    assert run.precision > run.baseline_precision
    assert run.ndcg > run.baseline_ndcg
    for name in ("recall", "map", "coverage", "baseline_recall", "baseline_map"):
        assert getattr(run, name) is not None
    assert run.interactions == 6000
    assert run.params["als"]["factors"] > 0
    assert run.protocol["evaluated_users"] > 200
    # and every visitor got a list of catalog skus, stored and in their profile document
    assert run.visitors_written == 300 == VisitorRecommendation.objects.count()
    key = pseudonymize("visitor-0")
    row = VisitorRecommendation.objects.get(profile__key=key)
    assert len(row.items) == 20
    assert all(s.startswith("sku-") for s in row.items)
    document = json.loads(redis_client.get(profile_cache_key(key)))
    assert document["recs"] == {"run": run.pk, "items": row.items}
    # and similar items exist for every catalog item, popularity lists too
    assert SimilarItems.objects.filter(run=run).count() == 60
    assert len(run.popular["global"]) == 50
    assert set(run.popular["by_category"]) == {"cat-0", "cat-1", "cat-2"}


@pytest.mark.django_db
@override_settings(**FAST)
def test_training_run__lists_follow_tastes__visitors_get_their_cluster(shop):
    # Given the planted taste groups of the shop
    data = shop
    # When training
    services.training_run(threads=1)
    # Then most recommended items of a visitor belong to the visitor's taste cluster
    hits = total = 0
    for u in range(0, 300, 10):
        row = VisitorRecommendation.objects.get(profile__key=pseudonymize(f"visitor-{u}"))
        clusters = [data.item_cluster[int(s.split("-")[1])] for s in row.items[:10]]
        hits += sum(c == data.user_group[u] for c in clusters)
        total += len(clusters)
    assert hits / total > 0.6


@pytest.mark.django_db
@override_settings(**FAST)
def test_training_run__exclude_purchased__bought_items_never_recommended(shop):
    # Given visitors who bought items (fixture events include purchases)
    services.training_run(threads=1)
    # Then no visitor is recommended an item they bought
    from profiles.models import Event

    for row in VisitorRecommendation.objects.all()[:100]:
        bought = set(
            Event.objects.filter(profile_id=row.profile_id, type="purchase").values_list(
                "properties__sku", flat=True
            )
        )
        assert not bought & set(row.items)


@pytest.mark.django_db
@override_settings(**FAST)
def test_training_run__no_events__empty_run_nothing_activated():
    # Given no events at all / When training / Then an "empty" run, nothing served changes
    run = services.training_run(threads=1)
    assert run.status == RunStatus.EMPTY
    assert not VisitorRecommendation.objects.exists()


@pytest.mark.django_db
@override_settings(**FAST)
def test_training_run__second_run_not_better__flagged_previous_stays_active(shop, monkeypatch):
    # Given an active run
    first = services.training_run(threads=1)
    assert first.status == RunStatus.ACTIVE
    # When a later run's model does not beat popularity (its test figures forced below)
    from recommendations.engine import evaluation

    real = evaluation.run_protocol

    def worse(*args, **kwargs):
        report = real(*args, **kwargs)
        report.results["als"] = {**report.results["popularity"]}
        return report

    monkeypatch.setattr(services, "run_protocol", worse)
    second = services.training_run(threads=1)
    # Then it is flagged, and the first run still serves
    assert second.status == RunStatus.FLAGGED
    assert second.beats_baseline is False
    first.refresh_from_db()
    assert first.status == RunStatus.ACTIVE
    assert set(VisitorRecommendation.objects.values_list("run_id", flat=True)) == {first.pk}


@pytest.mark.django_db
@override_settings(**FAST)
def test_training_run__already_running__skipped(shop, redis_client):
    # Given the training lock held (another run in progress)
    redis_client.set(services.TRAINING_LOCK, "other", ex=60)
    # When / Then no second run starts
    assert services.training_run(threads=1) is None
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
@override_settings(**FAST)
def test_erasure__visitor_erased__recommendations_gone_and_left_out_of_next_training(
    shop, redis_client
):
    from profiles import privacy

    # Given a trained shop
    services.training_run(threads=1)
    key = pseudonymize("visitor-5")
    assert VisitorRecommendation.objects.filter(profile__key=key).exists()
    # When the visitor is erased
    result = privacy.profile_erase(profile_key=key, actor="test")
    # Then their recommendations are gone from the database and Redis
    assert result.counts["recommendations"] == 1
    assert not VisitorRecommendation.objects.filter(profile__key=key).exists()
    assert redis_client.get(profile_cache_key(key)) is None
    # and the next training has one visitor fewer and never writes them back
    run = services.training_run(threads=1)
    assert run.users == 299
    assert not Profile.objects.filter(key=key).exists()
    assert VisitorRecommendation.objects.count() == 299


@pytest.mark.django_db
def test_interactions_collect__over_the_limit__keeps_the_most_recently_stored(shop, settings):
    # Given 6,000 interactions and a limit of 1,000 (read in chunks of 300)
    settings.MOSAIC_RECS_MAX_INTERACTIONS = 1000
    settings.MOSAIC_RECS_CHUNK = 300
    from profiles.models import Event

    # When collecting
    collected = services.interactions_collect()
    # Then exactly the 1,000 most recently stored events (highest ids) are kept
    assert len(collected.dataset.users) == 1000
    newest = Event.objects.order_by("-pk").values_list("occurred_at", flat=True)[:1000]
    assert sorted(collected.dataset.timestamps) == sorted(t.timestamp() for t in newest)
