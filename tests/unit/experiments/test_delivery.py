"""Delivery of experiments on decide (issue #14): sticky arms, coverage, layers, holdout, forced
arm preview, rollout, consent. Real Redis, real snapshot, the real decide endpoint."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from access import services as access_services
from experiments import services as exposure_services
from experiments.engine import ExperimentSpec, assign
from experiments.models import Arm, Experiment, ExperimentStatus
from experiments.services import ArmSpec, experiment_create, experiment_set_status
from personalization.snapshot import holder

URL = "/api/v1/decide"


def _start(placement, key="exp", weights=(1, 1), **fields):
    variants = list(placement.variants.exclude(key="default").order_by("key"))
    arms = [
        ArmSpec(key=f"arm{i}", variant=variants[i], weight=w, is_control=i == 0)
        for i, w in enumerate(weights)
    ]
    experiment = experiment_create(
        fields={"key": key, "name": key, "placement": placement, **fields}, arms=arms
    )
    experiment = experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    holder.reset()
    return experiment


def _serve(client, visitor, placement="hero", **params):
    response = client.get(URL, {"placements": placement, "visitor": visitor, **params})
    assert response.status_code == 200, response.content
    return response.json()["placements"][placement]


def _commands(redis_client, name: str) -> int:
    return int(redis_client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


@pytest.mark.django_db
def test_sticky__weights_changed__exposed_visitors_keep_their_arm(client, hero, redis_client):
    # Given a running sticky 50/50 experiment and 300 exposed visitors
    experiment = _start(hero, sticky=True)
    before = {v: _serve(client, f"v{v}")["experiment"]["arm"] for v in range(300)}
    # When the weights change to 1/9 (allowed without a new seed because it is sticky)
    Arm.objects.filter(experiment=experiment, key="arm1").update(weight=9)
    holder.reset()
    # (as another process would: nothing remembered locally, Redis holds the arms)
    exposure_services.exposures_recently_logged.clear()
    exposure_services.sticky_memo.clear()
    after = {v: _serve(client, f"v{v}")["experiment"]["arm"] for v in range(300)}
    # Then nobody moved, while new visitors follow the new weights
    assert after == before
    fresh = [_serve(client, f"new{v}")["experiment"]["arm"] for v in range(300)]
    assert fresh.count("arm1") > 230


@pytest.mark.django_db
def test_not_sticky__weights_changed__the_issue_bug_reproduced_by_hashing(client, hero):
    # Given the same change on a non-sticky experiment's spec (what the refusal prevents)
    old = ExperimentSpec(key="exp", seed="exp", arm_keys=("a", "b"), weights=(0.5, 0.5))
    new = ExperimentSpec(key="exp", seed="exp", arm_keys=("a", "b"), weights=(0.1, 0.9))
    moved = sum(assign(old, f"v{i}").arm_key != assign(new, f"v{i}").arm_key for i in range(300))
    # Then hashing alone moves many exposed visitors: why sticky or a new seed is required
    assert moved > 60


@pytest.mark.django_db
def test_sticky__redis_reads__one_hgetall_first_time_only_when_sticky(
    client, hero, promo_placement, redis_client
):
    # Given a sticky experiment on hero and a non-sticky one on promo
    _start(hero, sticky=True)
    _start(promo_placement, key="promo-exp")
    _serve(client, "warm", "hero")
    _serve(client, "warm", "promo")
    # When deciding promo only, Then no sticky read
    base = _commands(redis_client, "hgetall")
    _serve(client, "ann", "promo")
    assert _commands(redis_client, "hgetall") == base
    # When deciding hero, Then exactly one extra round trip: the visitor's arms, pipelined
    # HGETALLs of the hash's name and of its name before the cluster's hash tags (upgrade)
    _serve(client, "ann", "hero")
    assert _commands(redis_client, "hgetall") == base + 2
    # And once the process knows the visitor's sticky arm, none at all (steady state)
    for _ in range(3):
        _serve(client, "ann", "hero")
    assert _commands(redis_client, "hgetall") == base + 2


@pytest.mark.django_db
def test_coverage__raised__nobody_moves_between_arms(client, hero):
    # Given an experiment at 40 % coverage
    experiment = _start(hero, coverage=0.4)
    before = {v: _serve(client, f"v{v}")["experiment"] for v in range(300)}
    # When coverage rises to 100 %
    Experiment.objects.filter(pk=experiment.pk).update(coverage=1.0)
    holder.reset()
    after = {v: _serve(client, f"v{v}")["experiment"] for v in range(300)}
    # Then every enrolled visitor keeps their arm, and only new ones join
    enrolled = {v: e["arm"] for v, e in before.items() if e is not None}
    assert 60 < len(enrolled) < 180
    assert all(after[v]["arm"] == arm for v, arm in enrolled.items())
    assert all(e is not None for e in after.values())


@pytest.mark.django_db
def test_layers__two_experiments_one_layer__no_visitor_in_both(client, hero, promo_placement):
    # Given two experiments sharing layer "home" on disjoint halves
    _start(hero, layer="home", layer_start=0, layer_end=0.5)
    _start(promo_placement, key="promo-exp", layer="home", layer_start=0.5, layer_end=1)
    # When 400 visitors ask for both placements
    both = in_hero = in_promo = 0
    for v in range(400):
        body = client.get(URL, {"placements": "hero,promo", "visitor": f"v{v}"}).json()
        h = body["placements"]["hero"]["experiment"] is not None
        p = body["placements"]["promo"]["experiment"] is not None
        both += h and p
        in_hero += h
        in_promo += p
    # Then none is in both, and each gets about half
    assert both == 0
    assert 140 < in_hero < 260
    assert 140 < in_promo < 260


@pytest.mark.django_db
@override_settings(MOSAIC_EXPERIMENTS_HOLDOUT_PERCENT=20)
def test_holdout__20_percent__never_in_any_experiment(client, hero, promo_placement, redis_client):
    # Given a 20 % global holdout and two experiments
    _start(hero)
    _start(promo_placement, key="promo-exp")
    # When 500 visitors ask for both placements
    held = 0
    for v in range(500):
        body = client.get(URL, {"placements": "hero,promo", "visitor": f"v{v}"}).json()
        states = {body["placements"][p]["experiment"] is None for p in ("hero", "promo")}
        # Then a visitor is in both experiments or in neither (the holdout)
        assert len(states) == 1
        held += states == {True}
    assert 70 < held < 130
    # And held-out visitors are logged as such (per experiment), for the holdout comparison
    buffered = [
        json.loads(x)
        for name in exposure_services.BUFFER_KEYS
        for x in redis_client.lrange(name, 0, -1)
    ]
    assert sum(1 for e in buffered if e[1] == "__holdout__") == 2 * held


@pytest.mark.django_db
def test_forced_arm__secret_key__served_and_not_logged(client, hero, redis_client):
    # Given a running experiment and a secret key
    _start(hero)
    _, raw = access_services.api_key_create(name="srv", kind="secret")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    # When previewing each arm with force_arm
    for arm in ("arm0", "arm1"):
        body = client.get(
            URL, {"placements": "hero", "visitor": "ann", "force_arm": f"exp:{arm}"}, **auth
        ).json()
        # Then that arm is served, marked forced
        assert body["placements"]["hero"]["experiment"] == {
            "key": "exp",
            "arm": arm,
            "forced": True,
        }
    # And no exposure was logged
    assert exposure_services.exposures_buffered_count(redis_client) == 0


@pytest.mark.django_db
def test_forced_arm__anonymous_caller__ignored_and_normal_assignment(client, hero):
    _start(hero)
    served = _serve(client, "ann", force_arm="exp:arm1")
    assert "forced" not in (served["experiment"] or {})


@pytest.mark.django_db
def test_forced_arm__malformed__400_names_field(client, hero):
    _start(hero)
    response = client.get(URL, {"placements": "hero", "visitor": "a", "force_arm": "x;y"})
    assert response.status_code == 400
    assert "force_arm" in json.dumps(response.json())


@pytest.mark.django_db
def test_rollout__stopped_with_winner__everyone_gets_it_nothing_logged(client, hero, redis_client):
    # Given a stopped experiment rolling out arm1
    experiment = _start(hero)
    winner = experiment.arms.get(key="arm1")
    experiment_set_status(
        experiment=experiment, status=ExperimentStatus.STOPPED, rollout_arm=winner
    )
    holder.reset()
    # When visitors ask for the hero
    served = [_serve(client, f"v{v}") for v in range(20)]
    # Then all get the winner's variant, outside any experiment, and no exposure is logged
    assert {s["variant"] for s in served} == {winner.variant.key}
    assert {s["reason"] for s in served} == {"rollout:exp"}
    assert exposure_services.exposures_buffered_count(redis_client) == 0


@pytest.mark.django_db
def test_erasure__sticky_visitor__sticky_arms_key_deleted(client, hero, redis_client):
    # Given a visitor exposed to a sticky experiment (their arm remembered in Redis)
    from core.pseudonym import pseudonymize
    from segments.models import Profile
    from segments.privacy import profile_erase

    _start(hero, sticky=True)
    _serve(client, "erase-me")
    profile_key = pseudonymize("erase-me")
    Profile.objects.get_or_create(key=profile_key)
    assert redis_client.exists(exposure_services.sticky_key(profile_key))
    # When the visitor is erased
    profile_erase(profile_key=profile_key, actor="test")
    # Then the sticky arms are gone too
    assert not redis_client.exists(exposure_services.sticky_key(profile_key))
