"""The Celery application: broker and schedule come from Django settings (CELERY_* names)."""

import gc
import os
from pathlib import Path

from celery import Celery, bootsteps
from celery.signals import task_postrun, worker_process_init, worker_process_shutdown

from config import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# kombu's Redis channel: a closed broker connection is a connection error, not an AttributeError
# that ends the worker (config/broker.py).
broker.install()

app = Celery("mosaic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Container allocations between two young-generation collections in a worker process (Python's
# default: 700). Ingestion's batches build thousands of short-lived dicts and rows at a time.
WORKER_GC_THRESHOLD = 20_000


@worker_process_init.connect
def collector_tune(**_kwargs) -> None:
    """In each pool process: the code and data loaded before its first task (Django, the apps,
    Celery) are moved out of the collector's sight, and young collections run less often.

    Stage 2 of ingestion spent a large share of its CPU in the collector, which walked that
    long-lived heap again and again while a batch grew; the freeze and the higher threshold
    together took most of that away (figures: docs/benchmarks.md, "History"). Cyclic garbage is
    still collected, a little later."""
    gc.freeze()
    gc.set_threshold(WORKER_GC_THRESHOLD, *gc.get_threshold()[1:])


# Liveness (issue #13, item 12): a worker whose event loop hangs stays alive but consumes
# nothing. With MOSAIC_WORKER_LIVENESS_FILE set, the worker touches that file every few seconds
# from its event loop's timer; the supervisor of `make run` (config/supervise.py) kills and
# restarts a worker whose file went stale, and a production supervisor can do the same
# (docs/security.md, "Faults").
LIVENESS_INTERVAL_SECONDS = 5.0


class LivenessFile(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.path = os.environ.get("MOSAIC_WORKER_LIVENESS_FILE") or None
        self.entry = None

    def start(self, worker) -> None:
        if self.path is None:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._touch()
        self.entry = worker.timer.call_repeatedly(LIVENESS_INTERVAL_SECONDS, self._touch)

    def _touch(self) -> None:
        Path(self.path).touch()

    def stop(self, worker) -> None:
        if self.entry is not None:
            self.entry.cancel()


app.steps["worker"].add(LivenessFile)


@task_postrun.connect
def task_outcome_count(sender=None, state=None, **_kwargs) -> None:
    """Every task run's outcome (SUCCESS, FAILURE, RETRY, ...), summed over processes."""
    from core import metrics

    task = getattr(sender, "name", "?")
    metrics.incr("mosaic_celery_tasks_total", task=task, outcome=state or "?")


@worker_process_shutdown.connect
def metrics_process_exited(**_kwargs) -> None:
    from core import metrics

    metrics.process_exited(os.getpid())
