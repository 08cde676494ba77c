"""Celery tasks of recommendations: thin, a service call each."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(ignore_result=False)
def recommendations_train(trigger: str = "manual") -> dict:
    """Train, evaluate and activate or flag a run (skipped while another one runs)."""
    run = services.training_run(trigger=trigger)
    if run is None:
        return {"skipped": "a training is already running"}
    logger.info("recommendations_train run %s: %s", run.pk, run.status)
    return {
        "run": run.pk,
        "status": run.status,
        "precision": run.precision,
        "baseline_precision": run.baseline_precision,
    }


@shared_task(ignore_result=False)
def recommendations_refresh() -> dict:
    """Fold visitors whose behaviour changed since the active run into it (bounded batch)."""
    result = services.recommendations_refresh()
    if result.events == services.REFRESH_MAX_EVENTS:
        recommendations_refresh.delay()  # a backlog: the next batch right away
    return {"run": result.run_id, "visitors": result.visitors, "events": result.events}
