"""Results: the SQL aggregation per arm against a Python recount, the statistics on it, SRM,
guardrails, attribution windows and property filters, CUPED, snapshots over time."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from experiments import stats
from experiments.models import ExperimentMetric, ExperimentStatus, Exposure, ResultSnapshot
from experiments.results import results_compute
from experiments.services import ArmSpec, experiment_create, experiment_set_status
from profiles.models import Event, Profile
from tests.unit.experiments.conftest import make_metrics


@pytest.fixture
def running(hero):
    variants = list(hero.variants.exclude(key="default").order_by("key"))
    experiment = experiment_create(
        fields={"key": "exp", "name": "Exp", "placement": hero},
        arms=[
            ArmSpec("control", variants[0], 1, True),
            ArmSpec("treat", variants[1], 1, False),
        ],
    )
    experiment = experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    # Started ten days ago, so that every attribution window has closed by now.
    experiment.analysis_started_at = timezone.now() - timedelta(days=10)
    experiment.save()
    metrics = make_metrics()
    roles = {"purchase": "primary", "revenue": "secondary", "aov": "secondary"}
    roles["bounce"] = "guardrail"
    for key, role in roles.items():
        ExperimentMetric.objects.create(experiment=experiment, metric=metrics[key], role=role)
    return experiment


def _populate(experiment, *, n=(200, 220), rates=(0.1, 0.2), bounce=(0.1, 0.3), seed=1):
    """Visitors exposed per arm with purchases (some outside the window), pre-period purchases
    and bounces; returns the truth recounted in Python."""
    rng = random.Random(seed)
    start = experiment.analysis_started_at + timedelta(minutes=1)
    truth = {}
    events = []
    exposures = []
    for arm, count, rate, bounce_rate in zip(("control", "treat"), n, rates, bounce, strict=True):
        conv = []
        revenue = []
        orders = []
        pre = []
        bounced = []
        for i in range(count):
            profile = Profile.objects.create(key=f"{arm}-{i:05d}".ljust(64, "x"))
            at = start + timedelta(minutes=i)
            exposures.append(
                Exposure(
                    experiment=experiment, arm_key=arm, profile_key=profile.key, first_exposed_at=at
                )
            )
            k = 0
            total = 0.0
            if rng.random() < rate:
                k = rng.choice([1, 1, 2])
                for j in range(k):
                    value = rng.choice([10, 20, 35.5])
                    total += value
                    events.append(
                        Event(
                            profile=profile,
                            type="purchase",
                            value=Decimal(str(value)),
                            occurred_at=at + timedelta(hours=1 + j),
                        )
                    )
            # A purchase after the 48 h window counts for nothing (but is a "revenue" event
            # within revenue's 72 h window).
            late = rng.random() < 0.05
            if late:
                events.append(
                    Event(
                        profile=profile,
                        type="purchase",
                        value=Decimal("5"),
                        occurred_at=at + timedelta(hours=60),
                    )
                )
            # Pre-period purchase (CUPED covariate)
            p = 1.0 if rng.random() < 0.3 else 0.0
            if p:
                events.append(
                    Event(
                        profile=profile,
                        type="purchase",
                        value=Decimal("7"),
                        occurred_at=at - timedelta(days=2),
                    )
                )
            b = rng.random() < bounce_rate
            if b:
                events.append(
                    Event(
                        profile=profile,
                        type="custom",
                        name="bounce",
                        properties={"page": "home"},
                        occurred_at=at + timedelta(minutes=5),
                    )
                )
            elif rng.random() < 0.5:
                # A bounce on another page does not match the property filter.
                events.append(
                    Event(
                        profile=profile,
                        type="custom",
                        name="bounce",
                        properties={"page": "cart"},
                        occurred_at=at + timedelta(minutes=5),
                    )
                )
            conv.append(1.0 if k else 0.0)
            revenue.append(total + (5.0 if late else 0.0))
            orders.append(k + (1 if late else 0))
            pre.append(p)
            bounced.append(1.0 if b else 0.0)
        truth[arm] = {
            "conv": conv,
            "revenue": revenue,
            "orders": orders,
            "pre": pre,
            "bounce": bounced,
        }
    Exposure.objects.bulk_create(exposures)
    Event.objects.bulk_create(events)
    return truth


def _metric(snapshot, key):
    return next(m for m in snapshot.data["metrics"] if m["key"] == key)


@pytest.mark.django_db
def test_results__aggregates__match_python_recount_and_stats(running):
    # Given exposures and events with known truth
    truth = _populate(running)
    # When results are computed
    snapshot = results_compute(experiment=running)
    # Then users per arm, conversions within the window and revenue sums are exact
    assert [a["users"] for a in snapshot.data["arms"]] == [200, 220]
    purchase = _metric(snapshot, "purchase")
    for row in purchase["arms"]:
        assert row["sum"] == sum(truth[row["arm"]]["conv"])
    revenue = _metric(snapshot, "revenue")
    for row in revenue["arms"]:
        values = truth[row["arm"]]["revenue"]
        assert row["sum"] == pytest.approx(sum(values))
        assert row["sum_squares"] == pytest.approx(sum(v * v for v in values))
    # And the estimate is the stats module's on those counts
    c, t = (sum(truth[a]["conv"]) for a in ("control", "treat"))
    expected = stats.ttest(
        stats.Proportion(n=200, conversions=c), stats.Proportion(n=220, conversions=t)
    )
    got = purchase["estimates"]["treat"]["plain"]["relative"]
    assert got["expected"] == pytest.approx(expected.expected)
    assert got["p_value"] == pytest.approx(expected.p_value)
    assert "p_holm" in got
    assert got["p_holm"] >= got["p_value"]


@pytest.mark.django_db
def test_results__ratio_metric__revenue_per_order(running):
    truth = _populate(running)
    snapshot = results_compute(experiment=running)
    aov = _metric(snapshot, "aov")
    for row in aov["arms"]:
        t = truth[row["arm"]]
        assert row["mean"] == pytest.approx(sum(t["revenue"]) / sum(t["orders"]))


@pytest.mark.django_db
def test_results__cuped__uses_pre_period_covariate(running):
    truth = _populate(running)
    snapshot = results_compute(experiment=running)
    purchase = _metric(snapshot, "purchase")
    for row in purchase["arms"]:
        assert row["pre_sum"] == sum(truth[row["arm"]]["pre"])
    assert "cuped" in purchase["estimates"]["treat"]


@pytest.mark.django_db
def test_results__guardrail_worse__flagged(running):
    # Given bounces tripled in treatment (bounce: lower is better)
    _populate(running, n=(600, 600), bounce=(0.1, 0.3))
    snapshot = results_compute(experiment=running)
    # Then the guardrail is flagged for the treatment arm
    assert _metric(snapshot, "bounce")["guardrail_flagged"] == ["treat"]
    assert _metric(snapshot, "purchase")["guardrail_flagged"] == []


@pytest.mark.django_db
def test_results__srm__detected(running):
    # Given a 300 / 420 split on 50/50 weights
    _populate(running, n=(300, 420))
    snapshot = results_compute(experiment=running)
    # Then the SRM p-value is below 0.001 and the warning set
    assert snapshot.srm_p_value < 0.001
    assert snapshot.data["srm_warning"] is True


@pytest.mark.django_db
def test_results__as_of__earlier_snapshot_counts_fewer(running):
    _populate(running)
    midway = running.analysis_started_at + timedelta(minutes=100)
    early = results_compute(experiment=running, as_of=midway)
    late = results_compute(experiment=running, as_of=timezone.now() + timedelta(days=5))
    assert early.users < late.users
    assert ResultSnapshot.objects.filter(experiment=running).count() == 2


@pytest.mark.django_db
def test_results__bayesian_engine__chance_to_win_and_risk(running):
    running.engine = "bayesian"
    running.save()
    _populate(running)
    snapshot = results_compute(experiment=running)
    got = _metric(snapshot, "purchase")["estimates"]["treat"]["plain"]["relative"]
    assert 0 <= got["chance_to_win"] <= 1
    assert len(got["risk"]) == 2


@pytest.mark.django_db
def test_results__global_holdout__compared_with_all_arms_pooled(running):
    # Given exposed visitors converting ~15 % and 300 held-out visitors converting 5 %
    truth = _populate(running)
    start = running.analysis_started_at + timedelta(minutes=1)
    for i in range(300):
        profile = Profile.objects.create(key=f"held-{i:05d}".ljust(64, "h"))
        Exposure.objects.create(
            experiment=running,
            arm_key="__holdout__",
            profile_key=profile.key,
            first_exposed_at=start,
        )
        if i < 15:
            Event.objects.create(profile=profile, type="purchase", occurred_at=start)
    # When results are computed
    snapshot = results_compute(experiment=running)
    holdout = _metric(snapshot, "purchase")["holdout"]
    # Then the holdout is compared with both arms pooled, and arms are unaffected
    exposed = sum(truth["control"]["conv"]) + sum(truth["treat"]["conv"])
    expected = stats.ttest(
        stats.Proportion(n=300, conversions=15), stats.Proportion(n=420, conversions=exposed)
    )
    assert holdout["n"] == 300
    assert holdout["exposed_n"] == 420
    assert holdout["relative"]["expected"] == pytest.approx(expected.expected)
    assert [a["users"] for a in snapshot.data["arms"]] == [200, 220]
