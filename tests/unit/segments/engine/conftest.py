"""Synthetic event histories with planted structure, and the CDNOW file when it is present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from segments.engine.features import DAY, EventRows

ROOT = Path(__file__).resolve().parents[4]
T0 = 1_700_000_000.0  # an arbitrary UTC instant: the start of every synthetic history


def poisson_events(rates: np.ndarray, days: float, seed: int = 0, value_mean=None) -> EventRows:
    """Purchases of profile i (id i+1) as a Poisson process of `rates[i]` per day over `days`."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rates * days)
    profile = np.repeat(np.arange(1, len(rates) + 1, dtype=np.int64), counts)
    t = T0 + rng.uniform(0, days, size=counts.sum()) * DAY
    means = np.repeat(value_mean if value_mean is not None else np.full(len(rates), 20.0), counts)
    value = rng.gamma(2.0, means / 2.0)
    return EventRows(profile, np.full(len(profile), "purchase", object), t, value)


@pytest.fixture(scope="session")
def cdnow_path() -> Path:
    """The shared CDNOW file: beside the clone (CI) or where MOSAIC_SHARED_DIR points."""
    candidates = [ROOT.parent / "shared"]
    if os.environ.get("MOSAIC_SHARED_DIR"):
        candidates.insert(0, Path(os.environ["MOSAIC_SHARED_DIR"]))
    for base in candidates:
        path = base / "data" / "cdnow" / "CDNOW_master.txt"
        if path.is_file():
            return path
    pytest.skip(f"CDNOW_master.txt not found under {', '.join(map(str, candidates))}")
