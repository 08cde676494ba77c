"""Fixtures of the recommendations tests: interaction CSV files written from the generator."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recommendations.engine.synthetic import generate

ROOT = Path(__file__).resolve().parents[3]
EVENT_WEIGHT = {"product_view": 1, "add_to_cart": 3, "purchase": 5}


def write_interactions(path, data, *, iso=False):
    from datetime import UTC, datetime

    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user", "item", "weight", "timestamp"])
        for u, i, e, t in zip(data.users, data.items, data.events, data.timestamps, strict=True):
            stamp = datetime.fromtimestamp(int(t), UTC).isoformat() if iso else int(t)
            writer.writerow([f"user-{u}", f"sku-{i}", EVENT_WEIGHT[e], stamp])
    return path


@pytest.fixture
def interactions_csv(tmp_path):
    data = generate(n_interactions=6_000, n_users=300, n_items=120, n_groups=3, seed=8)
    return write_interactions(tmp_path / "interactions.csv", data)


@pytest.fixture
def write_csv(tmp_path):
    def write(text: str, name: str = "bad.csv"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def seed_shop(*, n_visitors=300, n_items=60, n_groups=3, n_interactions=6000, seed=1, taste=0.85):
    """A catalog of n_items and events of n_visitors with planted tastes, stored as rows.

    Events are inserted directly (bulk) for speed; the end-to-end test uses the real ingestion.
    Visitor ids are ``visitor-<n>``, skus ``sku-<n>``, categories ``cat-<cluster>``.
    """
    import time
    from datetime import UTC, datetime

    from core.pseudonym import pseudonymize
    from profiles.models import Event
    from profiles.services import profiles_get_or_create
    from recommendations.models import Item

    data = generate(
        n_interactions=n_interactions,
        n_users=n_visitors,
        n_items=n_items,
        n_groups=n_groups,
        n_categories=n_groups,
        taste_strength=taste,
        end=time.time() - 60,
        span_days=60,
        seed=seed,
    )
    Item.objects.bulk_create(
        [
            Item(
                sku=f"sku-{i}",
                title=f"Item {i}",
                category=f"cat-{data.item_category[i]}",
                price=10 + i,
                url=f"https://shop.example/p/{i}",
            )
            for i in range(n_items)
        ]
    )
    keys = [pseudonymize(f"visitor-{u}") for u in range(n_visitors)]
    profiles = profiles_get_or_create(keys=keys)
    Event.objects.bulk_create(
        [
            Event(
                profile=profiles[keys[u]],
                type=e,
                properties={"sku": f"sku-{i}"},
                occurred_at=datetime.fromtimestamp(t, UTC),
            )
            for u, i, e, t in zip(data.users, data.items, data.events, data.timestamps, strict=True)
        ],
        batch_size=2000,
    )
    return data


@pytest.fixture
def shop(db):
    return seed_shop()


def api(client, method, url, body=None, key=None):
    import json

    extra = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    if body is None:
        return getattr(client, method)(url, **extra)
    return getattr(client, method)(
        url, data=json.dumps(body), content_type="application/json", **extra
    )


def make_recs_placement(key: str = "recs", **fields):
    """A placement whose default variant is the recommendations block."""
    from recommendations.block import block_type_ensure
    from tests.factories import make_placement

    placement = make_placement(key)
    variant = placement.default_variant
    variant.block_type = block_type_ensure()
    variant.block_fields = {"count": 4, "title": "For you", **fields}
    variant.save()
    return placement


@pytest.fixture
def trained_shop(shop, settings, django_capture_on_commit_callbacks):
    from recommendations import services

    settings.MOSAIC_RECS_TUNING_SECONDS = 5.0
    with django_capture_on_commit_callbacks(execute=True):
        run = services.training_run(threads=1)
    assert run.status == "active", run.note
    return shop, run
