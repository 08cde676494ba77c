"""Fixtures for the experiments app tests: a hero placement with variants, metrics."""

from __future__ import annotations

import pytest

from tests.factories import make_placement, make_variant


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
