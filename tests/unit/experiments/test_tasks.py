"""Beat-driven results with a real Celery worker, and the bandit's weight update."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.bandits import bandit_update
from experiments.models import (
    Experiment,
    ExperimentMetric,
    ExperimentStatus,
    Exposure,
    ResultSnapshot,
)
from experiments.results import results_compute
from experiments.services import ArmSpec, experiment_create, experiment_set_status
from experiments.tasks import results_compute_running
from profiles.models import Event, Profile
from tests.conftest import wait_for
from tests.factories import make_placement, make_variant
from tests.unit.experiments.conftest import make_metrics


def _experiment(**fields):
    hero = make_placement("hero")
    a = make_variant(hero, "a", priority=500)
    b = make_variant(hero, "b", priority=500)
    experiment = experiment_create(
        fields={"key": "exp", "name": "Exp", "placement": hero, **fields},
        arms=[ArmSpec("control", a, 1, True), ArmSpec("treat", b, 1, False)],
    )
    experiment = experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    Experiment.objects.filter(pk=experiment.pk).update(
        analysis_started_at=timezone.now() - timedelta(days=3)
    )
    experiment.refresh_from_db()
    ExperimentMetric.objects.create(
        experiment=experiment, metric=make_metrics()["purchase"], role="primary"
    )
    return experiment


def _traffic(experiment, per_arm: int, rates: dict[str, float]):
    at = experiment.analysis_started_at + timedelta(hours=1)
    for arm, rate in rates.items():
        for i in range(per_arm):
            profile = Profile.objects.create(key=f"{arm}-{i:05d}".ljust(64, "0"))
            Exposure.objects.create(
                experiment=experiment, arm_key=arm, profile_key=profile.key, first_exposed_at=at
            )
            if i < rate * per_arm:
                Event.objects.create(profile=profile, type="purchase", occurred_at=at)


def test_results_task__real_worker__snapshot_written(celery_worker):
    # Given a running experiment with traffic
    experiment = _experiment()
    _traffic(experiment, 50, {"control": 0.1, "treat": 0.3})
    # When beat's task runs (enqueued to the real worker)
    results_compute_running.delay()
    # Then the worker stores a results snapshot with both arms counted
    snapshot = wait_for(
        lambda: ResultSnapshot.objects.filter(experiment=experiment).first(),
        message=celery_worker.output(),
    )
    assert snapshot.users == 100
    purchase = snapshot.data["metrics"][0]
    assert [row["sum"] for row in purchase["arms"]] == [5, 15]


@pytest.mark.django_db
def test_bandit__clear_winner__weight_moves_to_it_with_floor():
    # Given a sticky bandit whose treatment converts far better
    experiment = _experiment(bandit=True, sticky=True, bandit_min_weight=0.1)
    _traffic(experiment, 200, {"control": 0.05, "treat": 0.25})
    # When results are computed and the bandit updates
    snapshot = results_compute(experiment=experiment)
    assert bandit_update(experiment=experiment, snapshot=snapshot)
    # Then treatment gets (almost) everything but the control keeps its floor
    weights = dict(experiment.arms.values_list("key", "weight"))
    assert weights["treat"] == pytest.approx(0.9, abs=0.01)
    assert weights["control"] == pytest.approx(0.1, abs=0.01)


@pytest.mark.django_db
def test_bandit__not_sticky__refused_naming_sticky():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        _experiment(bandit=True)
    assert "sticky" in info.value.message_dict


def test_results_task__real_worker__second_beat_incremental_equals_direct(celery_worker):
    # Given a running experiment with traffic whose windows have closed, and a first beat
    from experiments.results import results_aggregates_direct

    experiment = _experiment()
    _traffic(experiment, 30, {"control": 0.1, "treat": 0.3})
    Event.objects.update(received_at=timezone.now() - timedelta(days=1))
    results_compute_running.delay()
    wait_for(
        lambda: ResultSnapshot.objects.filter(experiment=experiment).exists(),
        message=celery_worker.output(),
    )
    # When a late purchase of a control visitor (inside their closed window) and a new
    # visitor arrive, and beat runs again
    late = Profile.objects.get(key="control-00029".ljust(64, "0"))
    at = experiment.analysis_started_at + timedelta(hours=2)
    Event.objects.create(profile=late, type="purchase", occurred_at=at)
    newcomer = Profile.objects.create(key="newcomer".ljust(64, "0"))
    Exposure.objects.create(
        experiment=experiment, arm_key="treat", profile_key=newcomer.key, first_exposed_at=at
    )
    results_compute_running.delay()
    second = wait_for(
        lambda: (
            ResultSnapshot.objects.filter(experiment=experiment).order_by("-pk")[1:2].first()
            and ResultSnapshot.objects.filter(experiment=experiment).order_by("-pk").first()
        ),
        message=celery_worker.output(),
    )
    # Then the worker recomputed only those two visitors, and its sums equal the direct ones
    assert second.data["computation"] == {
        "mode": "incremental",
        "reason": None,
        "visitors_recomputed": 2,
    }
    purchase = second.data["metrics"][0]
    assert [row["sum"] for row in purchase["arms"]] == [4, 9]
    assert [row["n"] for row in purchase["arms"]] == [30, 31]
    direct = results_aggregates_direct(experiment=experiment, as_of=second.computed_at)["purchase"]
    assert [direct[arm]["post_sum"] for arm in ("control", "treat")] == [4, 9]


def test_admin_action__recompute_from_scratch__worker_stores_snapshot_from_scratch(
    celery_worker, admin_client
):
    # Given an experiment with a first (incremental-ready) computation
    experiment = _experiment()
    _traffic(experiment, 10, {"control": 0.1, "treat": 0.3})
    results_compute(experiment=experiment)
    # When a staff user runs the admin action on it
    response = admin_client.post(
        "/admin/experiments/experiment/",
        {"action": "results_rebuild", "_selected_action": [experiment.pk]},
        follow=True,
    )
    # Then the page says it is queued, and the worker stores a computation from scratch
    assert "Recomputation from scratch queued for 1 experiment" in response.content.decode()
    snapshot = wait_for(
        lambda: ResultSnapshot.objects.filter(
            experiment=experiment, data__computation__reason="asked"
        ).first(),
        message=celery_worker.output(),
    )
    assert snapshot.data["computation"]["mode"] == "from scratch"
    assert snapshot.users == 20
