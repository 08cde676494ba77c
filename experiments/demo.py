"""Demo data for experiments: a running A/B test on the hero with simulated traffic that has a
real effect (+50 % purchases), and its results computed day by day, so that the results page
shows a result, with its cumulative lift chart, on first start (`seed_demo` calls this)."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from content.models import Placement, Variant, VariantStatus
from core.pseudonym import pseudonymize
from profiles.models import Event, Profile

from .engine import ExperimentSpec, assign
from .models import (
    Arm,
    Experiment,
    ExperimentMetric,
    ExperimentStatus,
    Exposure,
    Metric,
    ResultSnapshot,
)
from .results import results_compute

KEY = "hero-bold-copy"
DAYS = 14
RATES = {"control": 0.05, "bold": 0.075}  # purchase within 72 h of first exposure
REMOVE_RATES = {"control": 0.08, "bold": 0.08}  # guardrail: no real change


def demo_metrics() -> dict[str, Metric]:
    specs = [
        ("purchase", "Purchase", "conversion", "purchase", "count", True),
        ("revenue", "Revenue per visitor", "mean", "purchase", "sum_value", True),
        ("cart-removal", "Cart removals", "conversion", "remove_from_cart", "count", False),
    ]
    return {
        key: Metric.objects.update_or_create(
            key=key,
            defaults={
                "name": name,
                "kind": kind,
                "event_type": event_type,
                "aggregation": aggregation,
                "higher_is_better": better,
                "window_hours": 72,
            },
        )[0]
        for key, name, kind, event_type, aggregation, better in specs
    }


@transaction.atomic
def demo_experiment_seed(*, visitors: int = 6000, seed: int = 14) -> Experiment | None:
    """Create (or recreate) the hero A/B test with `visitors` simulated visitors; None when the
    demo has no hero placement."""
    hero = Placement.objects.filter(key="hero").first()
    if hero is None or hero.default_variant is None:
        return None
    control_variant = hero.default_variant
    bold, _ = Variant.objects.update_or_create(
        placement=hero,
        key="welcome-bold",
        defaults={
            "name": "Welcome, bolder copy (experiment arm)",
            # Draft: only ever served as the experiment's arm, never as a targeted variant.
            "status": VariantStatus.DRAFT,
            "priority": 900,
            "block_type": control_variant.block_type,
            "block_fields": {
                **(control_variant.block_fields or {}),
                "title": "Your next favourite record is here",
                "cta": "Find it now",
            },
            "template": control_variant.template,
        },
    )
    Experiment.objects.filter(key=KEY).delete()
    now = timezone.now().replace(microsecond=0)
    started = now - timedelta(days=DAYS)
    experiment = Experiment.objects.create(
        key=KEY,
        name="Hero: bolder copy",
        hypothesis="A bolder hero headline sends more visitors to the shop and they buy more.",
        placement=hero,
        status=ExperimentStatus.RUNNING,
        started_at=started,
        analysis_started_at=started,
        planned_sample_size=visitors,
        cuped=True,
        # Visitors the hero already targets (loyal customers, cart abandoners, the RFM win-back
        # group, mobile) keep their personalised hero: the test runs on everyone else.
        condition={
            "profile.segments": {"$nin": ["loyal", "cart-abandoners", "win-back"]},
            "request.device": {"$ne": "mobile"},
        },
    )
    arms = [
        Arm.objects.create(
            experiment=experiment,
            key="control",
            name="Control",
            variant=control_variant,
            is_control=True,
            position=0,
        ),
        Arm.objects.create(
            experiment=experiment, key="bold", name="Bold copy", variant=bold, position=1
        ),
    ]
    metrics = demo_metrics()
    for key, role in (("purchase", "primary"), ("revenue", "secondary")):
        ExperimentMetric.objects.create(experiment=experiment, metric=metrics[key], role=role)
    ExperimentMetric.objects.create(
        experiment=experiment, metric=metrics["cart-removal"], role="guardrail"
    )

    spec = ExperimentSpec(
        key=KEY, seed=KEY, arm_keys=tuple(a.key for a in arms), weights=(0.5, 0.5)
    )
    rng = random.Random(seed)
    keys = [pseudonymize(f"demo-ab-{i}") for i in range(visitors)]
    Profile.objects.filter(key__in=keys).delete()
    profiles = Profile.objects.bulk_create(
        [Profile(key=k, consent={"analytics": True}) for k in keys], batch_size=1000
    )
    exposures, events = [], []
    for profile in profiles:
        arm = assign(spec, profile.key).arm_key
        at = started + timedelta(seconds=rng.uniform(0, DAYS * 86400 - 4 * 3600))
        exposures.append(
            Exposure(
                experiment=experiment, arm_key=arm, profile_key=profile.key, first_exposed_at=at
            )
        )
        # Past buyers buy more: the pre-period purchase is the CUPED covariate.
        loyal = rng.random() < 0.2
        if loyal:
            events.append(_purchase(profile, at - timedelta(days=rng.uniform(1, 13)), rng))
        rate = RATES[arm] * (2.0 if loyal else 0.75)
        if rng.random() < rate:
            events.append(_purchase(profile, at + timedelta(hours=rng.uniform(0.1, 48)), rng))
        if rng.random() < REMOVE_RATES[arm]:
            events.append(
                Event(
                    profile=profile,
                    type="remove_from_cart",
                    occurred_at=at + timedelta(minutes=rng.uniform(1, 600)),
                )
            )
    Exposure.objects.bulk_create(exposures, batch_size=1000)
    Event.objects.bulk_create(events, batch_size=1000)
    if connection.vendor == "postgresql":
        # The rows were just bulk-inserted and are read at once: the planner would otherwise go
        # by whatever statistics the tables had before (autovacuum has not run yet), and a plan
        # made for empty tables runs for minutes on these.
        with connection.cursor() as cursor:
            for model in (Exposure, Event, Profile):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    ResultSnapshot.objects.filter(experiment=experiment).delete()
    for day in range(1, DAYS + 1):
        results_compute(experiment=experiment, as_of=min(started + timedelta(days=day), now))
    return experiment


def _purchase(profile: Profile, when, rng: random.Random) -> Event:
    value = Decimal(str(rng.choice([12.99, 15.5, 19.99, 24.0, 39.9])))
    return Event(profile=profile, type="purchase", value=value, currency="EUR", occurred_at=when)
