"""Fixtures of the recommendations tests: interaction CSV files written from the generator."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recommendations.engine.synthetic import generate

ROOT = Path(__file__).resolve().parents[2]
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
