"""Settings of segment runs, RFM scoring, static lists, webhooks and guardrails (issue #15), and
recommendations' tuning budget (issue #17).

Read from the environment like the rest (names in README.md's table), validated in
config/settings/env.py (an unknown or out-of-range value refuses to start, naming the variable).
"""

from .env import ENV

# A segment run scans profiles in batches of this many (one progress write per batch).
MOSAIC_SEGMENT_RUN_BATCH = ENV.segment_run_batch
# Pause between a run's batches, so a large run leaves CPU to ingestion on a small machine.
MOSAIC_SEGMENT_RUN_YIELD_SECONDS = ENV.segment_run_yield_seconds
# A run's lease on its segment; renewed every batch. A killed run blocks the next one this long.
MOSAIC_SEGMENT_RUN_LEASE_SECONDS = ENV.segment_run_lease_seconds
# RFM: purchases within this many days before the scoring instant make the active base.
MOSAIC_RFM_WINDOW_DAYS = ENV.rfm_window_days
MOSAIC_RFM_RECOMPUTE_MINUTES = ENV.rfm_recompute_minutes
# Guardrails: segments smaller than this are flagged as too small to act on or measure.
MOSAIC_SEGMENT_MIN_SIZE = ENV.segment_min_size
# A placement whose variants target more segments than this is flagged.
MOSAIC_PLACEMENT_MAX_SEGMENTS = ENV.placement_max_segments
# Static lists: at most this many ids per upload (bounded memory and request time).
MOSAIC_STATIC_LIST_MAX_IDS = ENV.static_list_max_ids
# Webhooks: per-attempt timeout and retry policy (exponential backoff with full jitter).
MOSAIC_WEBHOOK_TIMEOUT_SECONDS = ENV.webhook_timeout_seconds
MOSAIC_WEBHOOK_MAX_ATTEMPTS = ENV.webhook_max_attempts
MOSAIC_WEBHOOK_BACKOFF_SECONDS = ENV.webhook_backoff_seconds
# Loopback and private webhook targets: allowed in the embedded set-up (the demo's echo receiver),
# refused in production unless set to true.
MOSAIC_WEBHOOK_ALLOW_LOOPBACK = ENV.webhook_allow_loopback
# Recommendations' tuning budget per training (recommendations/conf.py reads the setting).
MOSAIC_RECS_TUNING_SECONDS = ENV.recs_tuning_seconds
