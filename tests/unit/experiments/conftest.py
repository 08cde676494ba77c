"""Fixtures for the experiments app tests: a hero placement with variants, metrics."""

from __future__ import annotations

import pytest

from tests.factories import make_placement, make_variant


@pytest.fixture(autouse=True)
def _generous_render_budget(settings):
    """On a loaded test machine a render can pause past the render budget and fall back to the
    default, dropping the arm: these tests read arms, so the budget is not what they measure."""
    settings.MOSAIC_RENDER_BUDGET_MS = 60_000


@pytest.fixture
def hero(db):
    placement = make_placement("hero")
    for key in ("a", "b", "c"):
        make_variant(placement, f"hero-{key}", priority=500, template=f"<p>{key}</p>")
    return placement


@pytest.fixture
def promo_placement(db):
    placement = make_placement("promo")
    for key in ("a", "b"):
        make_variant(placement, f"promo-{key}", priority=500)
    return placement


def make_metrics():
    """The three metric kinds on purchases: conversion, revenue per visitor, revenue per order."""
    from experiments.models import Metric

    orders = Metric.objects.create(
        key="orders", name="Orders", kind="mean", event_type="purchase", aggregation="count"
    )
    return {
        "purchase": Metric.objects.create(
            key="purchase",
            name="Purchase",
            kind="conversion",
            event_type="purchase",
            window_hours=48,
        ),
        "revenue": Metric.objects.create(
            key="revenue",
            name="Revenue",
            kind="mean",
            event_type="purchase",
            aggregation="sum_value",
        ),
        "aov": Metric.objects.create(
            key="aov",
            name="Revenue per order",
            kind="ratio",
            event_type="purchase",
            aggregation="sum_value",
            denominator=orders,
        ),
        "orders": orders,
        "bounce": Metric.objects.create(
            key="bounce",
            name="Bounces",
            kind="conversion",
            event_type="custom",
            event_name="bounce",
            property_filter={"page": "home"},
            higher_is_better=False,
        ),
    }


from tests.unit.content.api.conftest import role_client  # noqa: E402, F401 (a fixture: one role)
