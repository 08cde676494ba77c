"""A task for the worker outage test (tests/integration/worker/test_worker_broker_outage.py), loaded
into its worker with `--include tests.outage_tasks`: it takes a known time, so that tasks are
running in the pool's processes when redis-server is killed (the review's crash came when such a
task finished)."""

from __future__ import annotations

import time

from config.celery import app


@app.task(name="tests.outage_pause")
def outage_pause(seconds: float) -> None:
    time.sleep(seconds)
