"""Experiment setup validation and lifecycle (issue #14): refused at save with the field named."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from experiments.models import Experiment, ExperimentStatus
from experiments.services import ArmSpec, experiment_create, experiment_set_status


def _arms(placement, *pairs):
    variants = {v.key: v for v in placement.variants.all()}
    return [
        ArmSpec(key=k, variant=variants[v], weight=w, is_control=i == 0)
        for i, (k, v, w) in enumerate(pairs)
    ]


def _create(placement, arms, **fields):
    return experiment_create(
        fields={"key": "exp", "name": "Exp", "placement": placement, **fields}, arms=arms
    )


def _errors(call) -> dict:
    with pytest.raises(ValidationError) as info:
        call()
    return info.value.message_dict


def test_create__valid_ab__saved_as_draft_without_times(hero):
    # Given two arms on two of the hero's variants
    experiment = _create(hero, _arms(hero, ("control", "hero-a", 1), ("treat", "hero-b", 1)))
    # Then it is a draft with both arms and no start time yet
    assert experiment.status == ExperimentStatus.DRAFT
    assert experiment.arms.count() == 2
    assert experiment.started_at is None


def test_create__arm_on_other_placement__refused_naming_variant(hero, promo_placement):
    # Given an arm pointing at the promo placement's variant
    promo_variant = promo_placement.variants.get(key="promo-a")
    arms = [
        *_arms(hero, ("control", "hero-a", 1)),
        ArmSpec(key="t", variant=promo_variant, weight=1, is_control=False),
    ]
    # When creating, Then it is refused naming the variant field, nothing written
    errors = _errors(lambda: _create(hero, arms))
    assert "variant" in errors
    assert "promo" in errors["variant"][0]
    assert not Experiment.objects.exists()


def test_create__two_arms_one_variant__refused_naming_arms(hero):
    errors = _errors(
        lambda: _create(hero, _arms(hero, ("control", "hero-a", 1), ("t", "hero-a", 1)))
    )
    assert "distinct" in errors["arms"][0]


def test_create__no_control__refused_naming_is_control(hero):
    arms = _arms(hero, ("control", "hero-a", 1), ("t", "hero-b", 1))
    arms[0] = ArmSpec("control", arms[0].variant, 1, False)
    assert "is_control" in _errors(lambda: _create(hero, arms))


@pytest.mark.parametrize("weight", [0, -1, float("nan"), float("inf")])
def test_create__non_positive_weight__refused_naming_weight(hero, weight):
    arms = _arms(hero, ("control", "hero-a", 1), ("t", "hero-b", weight))
    assert "weight" in _errors(lambda: _create(hero, arms))


def test_status__start_then_stop__times_recorded_and_no_restart(hero):
    # Given a draft
    experiment = _create(hero, _arms(hero, ("control", "hero-a", 1), ("t", "hero-b", 1)))
    # When started, then stopped
    experiment = experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    assert experiment.started_at is not None
    assert experiment.analysis_started_at == experiment.started_at
    experiment = experiment_set_status(experiment=experiment, status=ExperimentStatus.STOPPED)
    # Then both times are recorded, and a stopped experiment cannot run again
    assert experiment.ended_at >= experiment.started_at
    errors = _errors(
        lambda: experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    )
    assert "status" in errors


def test_weights__running_not_sticky_same_seed__refused_naming_seed(hero):
    # Given a running, non-sticky experiment
    experiment = _create(hero, _arms(hero, ("control", "hero-a", 1), ("t", "hero-b", 1)))
    experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    experiment.refresh_from_db()
    from experiments.lifecycle import experiment_validate

    # When its weights change without a new seed
    new_arms = _arms(hero, ("control", "hero-a", 1), ("t", "hero-b", 3))
    errors = experiment_validate(experiment=experiment, arms=new_arms)
    # Then the change is refused naming the seed (it would move exposed visitors)
    assert "seed" in errors
    # And with a new seed, or sticky, it is accepted
    experiment.seed = "exp-v2"
    assert experiment_validate(experiment=experiment, arms=new_arms) == {}
    experiment.seed = ""
    experiment.sticky = True
    assert experiment_validate(experiment=experiment, arms=new_arms) == {}


def test_layers__overlapping_slice__refused_naming_layer_start(hero, promo_placement):
    # Given an experiment on [0, 0.5) of layer "home"
    _create(
        hero,
        _arms(hero, ("control", "hero-a", 1), ("t", "hero-b", 1)),
        layer="home",
        layer_end=0.5,
    )
    # When another takes [0.4, 1) of the same layer, Then refused naming layer_start
    arms = _arms(promo_placement, ("control", "promo-a", 1), ("t", "promo-b", 1))
    errors = _errors(
        lambda: experiment_create(
            fields={
                "key": "other",
                "name": "Other",
                "placement": promo_placement,
                "layer": "home",
                "layer_start": 0.4,
            },
            arms=arms,
        )
    )
    assert "overlaps experiment exp" in errors["layer_start"][0]


def test_admin__arm_on_other_placement__form_error_names_variant(
    admin_client, hero, promo_placement
):
    # Given the admin add form with an arm on the promo placement's variant
    a = hero.variants.get(key="hero-a")
    other = promo_placement.variants.get(key="promo-a")
    data = {
        "name": "X",
        "key": "x",
        "placement": hero.pk,
        "status": "running",
        "coverage": "1",
        "seed": "",
        "condition": "{}",
        "layer": "",
        "layer_start": "0",
        "layer_end": "1",
        "engine": "frequentist",
        "cuped_days": "14",
        "bandit_min_weight": "0.05",
        "arms-TOTAL_FORMS": "2",
        "arms-INITIAL_FORMS": "0",
        "arms-0-key": "control",
        "arms-0-name": "Control",
        "arms-0-variant": a.pk,
        "arms-0-weight": "1",
        "arms-0-is_control": "on",
        "arms-0-position": "0",
        "arms-1-key": "t",
        "arms-1-name": "T",
        "arms-1-variant": other.pk,
        "arms-1-weight": "1",
        "arms-1-position": "1",
        "experiment_metrics-TOTAL_FORMS": "0",
        "experiment_metrics-INITIAL_FORMS": "0",
    }
    # When saving
    response = admin_client.post("/admin/experiments/experiment/add/", data)
    # Then the page is shown again with the error naming the field, nothing saved
    assert response.status_code == 200
    assert "variant: Arms must serve variants of placement hero" in response.content.decode()
    assert not Experiment.objects.exists()
    # And with both arms on the hero, it saves as running with its start time
    data["arms-1-variant"] = hero.variants.get(key="hero-b").pk
    response = admin_client.post("/admin/experiments/experiment/add/", data)
    assert response.status_code == 302
    assert Experiment.objects.get(key="x").started_at is not None
