"""A small shop in the database with planted structure: heavy and occasional buyers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from core.pseudonym import pseudonymize
from segments.models import Event, Profile

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def shop_create(
    n: int = 300, days: int = 200, seed: int = 0, start: dt.datetime = START
) -> dict[int, float]:
    """Profiles buying at one of three daily rates over `days` days, with page views and a
    `plan` trait; returns each profile id's planted rate."""
    rng = np.random.default_rng(seed)
    rates = rng.choice([0.01, 0.04, 0.15], size=n)
    profiles = Profile.objects.bulk_create(
        [
            Profile(key=pseudonymize(f"shop:{i}"), traits={"plan": "pro" if r > 0.1 else "free"})
            for i, r in enumerate(rates)
        ]
    )
    events = []
    for profile, rate in zip(profiles, rates, strict=True):
        for _ in range(rng.poisson(rate * days) + 1):
            at = start + dt.timedelta(days=float(rng.uniform(0, days)))
            events.append(
                Event(
                    profile=profile,
                    type="purchase",
                    occurred_at=at,
                    value=round(float(rng.gamma(2, 15)), 2),
                    properties={"category": str(rng.choice(["jazz", "rock"]))},
                )
            )
            events.append(Event(profile=profile, type="page_view", occurred_at=at))
    Event.objects.bulk_create(events, batch_size=2000)
    return {p.pk: float(r) for p, r in zip(profiles, rates, strict=True)}


@pytest.fixture
def shop(db):
    return shop_create()


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user(
        "ana", password="pw-ana-1234", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    client.user = user
    return client
