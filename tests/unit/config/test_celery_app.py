"""The Celery application's process set-up (config/celery.py). No database."""

from __future__ import annotations

import gc

import pytest
from celery.signals import worker_process_init

from config.celery import WORKER_GC_THRESHOLD


@pytest.fixture
def collector_restored():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_collector_tune__pool_process_start__heap_frozen_and_young_collections_rarer(
    collector_restored,
):
    # Given a process with Python's collector defaults and nothing frozen
    gc.unfreeze()
    older = gc.get_threshold()[1:]
    # When a pool process starts (Celery sends worker_process_init in each)
    worker_process_init.send(sender=None)
    # Then what it had loaded is frozen, and young collections wait for more allocations
    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold() == (WORKER_GC_THRESHOLD, *older)
