"""The Celery application: broker and schedule come from Django settings (CELERY_* names)."""

import gc
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

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
