"""The Celery application: broker and schedule come from Django settings (CELERY_* names)."""

import gc
import os
from pathlib import Path

from celery import Celery, bootsteps
from celery.signals import worker_process_init

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

    Stage 2 of ingestion (5,000 profiles, 10,000 events, in a test process) spent about 40 % of
    its CPU in the collector, which walked that long-lived heap again and again while a batch
    grew: 0.91 s with Python's defaults, 0.68 s with the freeze alone, 0.54 s with both, 0.57 s
    with no collector at all (docs/benchmarks.md). Cyclic garbage is still collected, a little
    later."""
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
