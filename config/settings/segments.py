"""Settings of segment runs, RFM scoring, static lists, webhooks and guardrails (issue #15).

Read from the environment like the rest (names in README.md's table); typed here, in one place.
"""

import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# A segment run scans profiles in batches of this many (one progress write per batch).
MOSAIC_SEGMENT_RUN_BATCH = _int("MOSAIC_SEGMENT_RUN_BATCH", 2000)
# Pause between a run's batches, so a large run leaves CPU to ingestion on a small machine.
MOSAIC_SEGMENT_RUN_YIELD_SECONDS = _float("MOSAIC_SEGMENT_RUN_YIELD_SECONDS", 0.0)
# A run's lease on its segment; renewed every batch. A killed run blocks the next one this long.
MOSAIC_SEGMENT_RUN_LEASE_SECONDS = _int("MOSAIC_SEGMENT_RUN_LEASE_SECONDS", 120)
# RFM: purchases within this many days before the scoring instant make the active base.
MOSAIC_RFM_WINDOW_DAYS = _int("MOSAIC_RFM_WINDOW_DAYS", 365)
MOSAIC_RFM_RECOMPUTE_MINUTES = _int("MOSAIC_RFM_RECOMPUTE_MINUTES", 60)
# Guardrails: segments smaller than this are flagged as too small to act on or measure.
MOSAIC_SEGMENT_MIN_SIZE = _int("MOSAIC_SEGMENT_MIN_SIZE", 100)
# A placement whose variants target more segments than this is flagged.
MOSAIC_PLACEMENT_MAX_SEGMENTS = _int("MOSAIC_PLACEMENT_MAX_SEGMENTS", 15)
# Static lists: at most this many ids per upload (bounded memory and request time).
MOSAIC_STATIC_LIST_MAX_IDS = _int("MOSAIC_STATIC_LIST_MAX_IDS", 1_000_000)
# Webhooks: per-attempt timeout and retry policy (exponential backoff with full jitter).
MOSAIC_WEBHOOK_TIMEOUT_SECONDS = _float("MOSAIC_WEBHOOK_TIMEOUT_SECONDS", 5.0)
MOSAIC_WEBHOOK_MAX_ATTEMPTS = _int("MOSAIC_WEBHOOK_MAX_ATTEMPTS", 6)
MOSAIC_WEBHOOK_BACKOFF_SECONDS = _float("MOSAIC_WEBHOOK_BACKOFF_SECONDS", 2.0)
# Loopback and private webhook targets: allowed in the embedded set-up (the demo's echo receiver),
# refused in production unless set to 1.
_PRODUCTION = os.environ.get("MOSAIC_PRODUCTION", "").lower() in ("1", "true", "yes", "on")
MOSAIC_WEBHOOK_ALLOW_LOOPBACK = (
    os.environ.get("MOSAIC_WEBHOOK_ALLOW_LOOPBACK", "0" if _PRODUCTION else "1") == "1"
)
