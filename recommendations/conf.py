"""Settings of recommendations, with their defaults (override any in the Django settings)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # weight of each event type in the interaction matrix (others are not interactions)
    "MOSAIC_RECS_EVENT_WEIGHTS": {"product_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0},
    # exponential time decay of an interaction's weight; None: no decay
    "MOSAIC_RECS_HALF_LIFE_DAYS": 30.0,
    # only events this recent train the model, at most this many (the newest)
    "MOSAIC_RECS_WINDOW_DAYS": 180,
    "MOSAIC_RECS_MAX_INTERACTIONS": 5_000_000,
    # events read from the database per query
    "MOSAIC_RECS_CHUNK": 20_000,
    # evaluation cut-off and the length of each visitor's precomputed list
    "MOSAIC_RECS_K": 10,
    "MOSAIC_RECS_TOP_N": 20,
    # what a visitor is never recommended: "purchased", "interacted" or "none"
    "MOSAIC_RECS_EXCLUDE": "purchased",
    # seconds of hyperparameter search per training after the defaults; the settings set it
    # from the environment (MOSAIC_RECS_TUNING_SECONDS, validated in config/settings/env.py), so
    # that a worker process can be given a shorter one
    "MOSAIC_RECS_TUNING_SECONDS": 60.0,
    # similar items kept per sku
    "MOSAIC_RECS_SIMILAR_N": 12,
    # popularity per segment (the cold-start list of a segment's members): only active segments
    # with at least this many members who interacted with catalog items, at most this many
    # segments (the largest), this many items each (each item interacted with by at least two
    # members)
    "MOSAIC_RECS_SEGMENT_MIN_USERS": 20,
    "MOSAIC_RECS_SEGMENT_MAX": 100,
    "MOSAIC_RECS_SEGMENT_TOP_N": 20,
}
# The beat schedule's interval is the environment variable MOSAIC_RECS_TRAIN_MINUTES (default
# 360), validated in config/settings/env.py and read in the Celery settings.


def setting(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
