"""Celery tasks for experiments: thin wrappers over services, idempotent, returning numbers."""

from __future__ import annotations

import logging
from dataclasses import asdict

import redis
from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, autoretry_for=(redis.RedisError,), retry_backoff=2, max_retries=5)
def exposures_flush(self, batch_size: int = 1000, max_batches: int = 10) -> dict[str, int]:
    """Write buffered exposures to the database (bounded: at most max_batches per run)."""
    result = services.exposures_flush(batch_size=batch_size, max_batches=max_batches)
    totals = {
        **asdict(result),
        "skipped_locked": int(result.skipped_locked),
        "lost_in_this_process": services.exposures_lost.value,
    }
    if result.read or result.skipped_locked:
        logger.info("exposures_flush %s", totals)
    return totals


@shared_task
def results_compute_running() -> dict[str, int]:
    """Beat: enqueue a results computation per running experiment (one task each, bounded)."""
    from .models import Experiment, ExperimentStatus

    ids = list(
        Experiment.objects.filter(status=ExperimentStatus.RUNNING).values_list("pk", flat=True)
    )
    for experiment_id in ids:
        results_compute.delay(experiment_id)
    return {"enqueued": len(ids)}


@shared_task
def results_compute(experiment_id: int, rebuild: bool = False) -> dict[str, int]:
    """Compute and store one experiment's results (idempotent: a new snapshot per run;
    incremental, or from scratch with `rebuild`); then, for bandit experiments, update the arms'
    weights from the primary metric."""
    from .bandits import bandit_update
    from .models import Experiment
    from .results import results_compute as compute

    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is None:
        return {"computed": 0}
    snapshot = compute(experiment=experiment, rebuild=rebuild)
    updated = (
        bandit_update(experiment=experiment, snapshot=snapshot) if experiment.bandit else False
    )
    logger.info(
        "results_compute experiment=%s users=%d ms=%d mode=%s recomputed=%s bandit_updated=%s",
        experiment.key,
        snapshot.users,
        snapshot.duration_ms,
        snapshot.data["computation"]["mode"],
        snapshot.data["computation"]["visitors_recomputed"],
        updated,
    )
    return {
        "computed": 1,
        "snapshot": snapshot.pk,
        "users": snapshot.users,
        "duration_ms": snapshot.duration_ms,
        "recomputed": snapshot.data["computation"]["visitors_recomputed"] or 0,
        "from_scratch": int(snapshot.data["computation"]["mode"] == "from scratch"),
    }
