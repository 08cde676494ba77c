"""Multivariate (full factorial over two placements): arms per combination, consistent serving
on both placements, main effects and interaction in the results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from experiments import stats
from experiments.lifecycle import ArmSpec, experiment_create, experiment_create_factorial
from experiments.models import Experiment, ExperimentMetric, ExperimentStatus, Exposure
from experiments.results import results_compute
from experiments.services import experiment_set_status
from personalization.snapshot import holder
from profiles.models import Event, Profile
from tests.unit.experiments.conftest import make_metrics

URL = "/api/v1/decide"


def _factorial(hero, promo):
    h = list(hero.variants.exclude(key="default").order_by("key"))[:2]
    p = list(promo.variants.exclude(key="default").order_by("key"))[:2]
    experiment = experiment_create_factorial(
        fields={"key": "mvt", "name": "Hero x promo"}, factors=[(hero, h), (promo, p)]
    )
    return experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)


def test_factorial__2x2__four_arms_one_control(hero, promo_placement):
    experiment = _factorial(hero, promo_placement)
    arms = list(experiment.arms.order_by("position"))
    assert [a.key for a in arms] == [
        "hero-a-promo-a",
        "hero-a-promo-b",
        "hero-b-promo-a",
        "hero-b-promo-b",
    ]
    assert [a.is_control for a in arms] == [True, False, False, False]
    assert all(a.extra_variants.count() == 1 for a in arms)


def test_factorial__decide__both_placements_serve_the_arms_combination(
    client, hero, promo_placement
):
    # Given a running 2x2 experiment over hero and promo
    experiment = _factorial(hero, promo_placement)
    holder.reset()
    combos = {a.key: (a.variant.key, a.extra_variants.get().key) for a in experiment.arms.all()}
    seen = set()
    # When visitors ask for both placements
    for v in range(80):
        body = client.get(URL, {"placements": "hero,promo", "visitor": f"v{v}"}).json()
        hero_d, promo_d = body["placements"]["hero"], body["placements"]["promo"]
        # Then both placements report the same arm and serve that arm's two variants
        assert hero_d["experiment"]["arm"] == promo_d["experiment"]["arm"]
        arm = hero_d["experiment"]["arm"]
        assert (hero_d["variant"], promo_d["variant"]) == combos[arm]
        seen.add(arm)
    assert seen == set(combos)


def test_factorial__arm_missing_a_factor__refused_naming_extra_variants(hero, promo_placement):
    h = list(hero.variants.exclude(key="default").order_by("key"))
    with pytest.raises(ValidationError) as info:
        experiment_create(
            fields={"key": "bad", "name": "Bad", "placement": hero},
            arms=[ArmSpec("c", h[0], 1, True), ArmSpec("t", h[1], 1, False)],
            extra_placements=[promo_placement],
        )
    assert "extra_variants" in info.value.message_dict
    assert not Experiment.objects.exists()


def test_factorial__results__main_effects_and_zero_interaction(hero, promo_placement):
    # Given cells converting 10 %, 10 %, 20 %, 20 % (hero b doubles; promo does nothing)
    experiment = _factorial(hero, promo_placement)
    Experiment.objects.filter(pk=experiment.pk).update(
        analysis_started_at=timezone.now() - timedelta(days=5)
    )
    experiment.refresh_from_db()
    ExperimentMetric.objects.create(
        experiment=experiment, metric=make_metrics()["purchase"], role="primary"
    )
    rates = {
        "hero-a-promo-a": 50,
        "hero-a-promo-b": 50,
        "hero-b-promo-a": 100,
        "hero-b-promo-b": 100,
    }
    at = experiment.analysis_started_at + timedelta(hours=1)
    for arm, converters in rates.items():
        for i in range(500):
            profile = Profile.objects.create(key=f"{arm}-{i:04d}".ljust(64, "0"))
            Exposure.objects.create(
                experiment=experiment, arm_key=arm, profile_key=profile.key, first_exposed_at=at
            )
            if i < converters:
                Event.objects.create(profile=profile, type="purchase", occurred_at=at)
    # When results are computed
    factorial = results_compute(experiment=experiment).data["factorial"]
    effects = factorial["metrics"]["purchase"]
    main = {e["factor"]: e for e in effects["main_effects"]}
    # Then hero's main effect is +100 % (significant), promo's is 0, and no interaction
    assert main["hero"]["relative"]["expected"] == pytest.approx(1.0)
    pooled = stats.ttest(
        stats.Proportion(n=1000, conversions=100), stats.Proportion(n=1000, conversions=200)
    )
    assert main["hero"]["relative"]["p_value"] == pytest.approx(pooled.p_value)
    assert main["hero"]["relative"]["p_value"] < 1e-4
    assert main["promo"]["relative"]["expected"] == pytest.approx(0.0)
    [interaction] = effects["interactions"]
    assert interaction["factors"] == ["hero", "promo"]
    assert interaction["expected"] == pytest.approx(0.0)
    assert interaction["ci_low"] < 0 < interaction["ci_high"]


def test_factorial__admin_results_page__shows_main_effects_and_interaction(
    admin_client, hero, promo_placement
):
    experiment = _factorial(hero, promo_placement)
    ExperimentMetric.objects.create(
        experiment=experiment, metric=make_metrics()["purchase"], role="primary"
    )
    for arm in experiment.arms.all():
        for i in range(3):
            Exposure.objects.create(
                experiment=experiment,
                arm_key=arm.key,
                profile_key=f"{arm.key}-{i}",
                first_exposed_at=experiment.analysis_started_at,
            )
    results_compute(experiment=experiment, as_of=timezone.now() + timedelta(hours=1))
    html = admin_client.get(f"/admin/experiments/experiment/{experiment.pk}/results/").content
    html = html.decode()
    assert 'id="factorial"' in html
    assert "promo-b vs promo-a" in html
    assert "interaction hero x promo" in html
