"""Celery: Redis broker, JSON only, late acknowledgement so a killed worker's task is re-run."""

from datetime import timedelta

from celery.schedules import crontab

from .env import ENV

CELERY_BROKER_URL = ENV.celery_broker_url
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = ENV.celery_task_always_eager
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Reconnect to the broker for as long as it takes (issue #13, item 12): Celery's default of 100
# tries (2 s, 4 s, ... then every 30 s: about 47 minutes) ends the worker in a longer outage.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "segments-recompute-all": {
        "task": "segments.tasks.segments_recompute_all",
        "schedule": timedelta(minutes=ENV.segment_recompute_minutes),
    },
    "events-drain-queue": {
        # A safety net: ingestion is triggered on every accepted batch; this catches batches
        # whose trigger was lost (worker down when they arrived).
        "task": "segments.tasks.events_ingest_pending",
        "schedule": timedelta(seconds=30),
    },
    "profiles-aggregate-pending": {
        # The same safety net for ingestion's second stage (stage 1 triggers it after each batch).
        "task": "segments.tasks.profiles_aggregate_pending",
        "schedule": timedelta(seconds=30),
    },
    "events-purge-expired": {
        # Retention (MOSAIC_EVENT_RETENTION_DAYS): daily, at a quiet hour, in bounded batches.
        "task": "segments.tasks.events_purge_expired",
        "schedule": crontab(hour=3, minute=17),
    },
    "exposures-flush": {
        # Moves the Redis exposure buffer into experiments.Exposure in bounded batches.
        "task": "experiments.tasks.exposures_flush",
        "schedule": timedelta(seconds=10),
    },
    "segments-rfm-refresh": {
        # RFM scores of the active base, then the RFM segments (segments.tasks.rfm_refresh).
        "task": "segments.tasks.rfm_refresh",
        "schedule": timedelta(minutes=ENV.rfm_recompute_minutes),
    },
    "segments-kpis-refresh": {
        # Daily KPIs per segment (today so far and yesterday's final figures), hourly.
        "task": "segments.tasks.segments_kpis_refresh",
        "schedule": timedelta(hours=1),
    },
    "segments-webhooks-sweep": {
        "task": "segments.tasks.webhook_deliveries_sweep",
        "schedule": timedelta(minutes=1),
    },
    "segments-time-due": {
        # Time-driven membership: profiles whose $ago/window segments may have flipped by now.
        "task": "segments.tasks.profiles_refresh_time_due",
        "schedule": timedelta(seconds=ENV.time_due_seconds),
    },
    "experiments-results": {
        # Results of running experiments (and bandit weights), never computed on page load.
        "task": "experiments.tasks.results_compute_running",
        "schedule": timedelta(minutes=15),
    },
    "profile-documents-ensure": {
        # Redis restarted without its data: rebuild the profile documents decide reads.
        "task": "segments.tasks.profile_documents_ensure",
        "schedule": timedelta(minutes=1),
    },
    "recommendations-train": {
        # Retrain, evaluate against popularity, activate or flag (recommendations.services).
        "task": "recommendations.tasks.recommendations_train",
        "schedule": timedelta(minutes=ENV.recs_train_minutes),
        "args": ("schedule",),
    },
    "recommendations-refresh": {
        # Visitors whose behaviour changed since the active run get new lists (recalculate-user).
        "task": "recommendations.tasks.recommendations_refresh",
        "schedule": timedelta(minutes=5),
    },
}
