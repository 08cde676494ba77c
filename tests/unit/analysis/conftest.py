"""A small shop in the database with planted structure: heavy and occasional buyers."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest

from core.pseudonym import pseudonymize
from profiles.models import Event, Profile

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def shop_create(
    n: int = 300,
    days: int = 200,
    seed: int = 0,
    start: dt.datetime = START,
    prefix: str = "shop",
) -> dict[int, float]:
    """Profiles buying at one of three daily rates over `days` days, with page views and a
    `plan` trait; returns each profile id's planted rate."""
    rng = np.random.default_rng(seed)
    rates = rng.choice([0.01, 0.04, 0.15], size=n)
    profiles = Profile.objects.bulk_create(
        [
            Profile(
                key=pseudonymize(f"{prefix}:{i}"), traits={"plan": "pro" if r > 0.1 else "free"}
            )
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


CHROMIUM = Path(os.environ.get("MOSAIC_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots"


@pytest.fixture
def browser_page(live_server, transactional_db):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found")
    sync_api = pytest.importorskip("playwright.sync_api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(15_000)
            yield page
            browser.close()
