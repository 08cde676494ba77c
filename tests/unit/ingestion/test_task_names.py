"""Tasks moved out of segments keep the dotted names beat schedules, django-celery-beat rows and
queued messages know them by."""

from __future__ import annotations

import pytest
from django.conf import settings

from config.celery import app
from ingestion import tasks as ingestion_tasks
from profiles import tasks as profile_tasks


@pytest.mark.parametrize(
    ("task", "name"),
    [
        (ingestion_tasks.events_ingest_pending, "segments.tasks.events_ingest_pending"),
        (ingestion_tasks.profiles_aggregate_pending, "segments.tasks.profiles_aggregate_pending"),
        (ingestion_tasks.events_purge_expired, "segments.tasks.events_purge_expired"),
        (profile_tasks.profile_documents_ensure, "segments.tasks.profile_documents_ensure"),
        (profile_tasks.profiles_documents_rewrite, "segments.tasks.profiles_documents_rewrite"),
        (profile_tasks.redis_persistence_rewrite, "segments.tasks.redis_persistence_rewrite"),
    ],
)
def test_moved_task__registered__under_its_segments_name(task, name):
    # Given a task whose code moved to ingestion/ or profiles/
    # When the Celery app looks up its old dotted name
    # Then it finds this task
    assert task.name == name
    assert app.tasks[name].run == task.run  # the same function (`task` is a shared_task proxy)


def test_beat_schedule__every_entry__names_a_registered_task():
    # Given the app's tasks as a worker loads them (autodiscovery)
    app.loader.import_default_modules()
    # When each beat entry's task name is looked up / Then it is registered
    missing = [
        e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] not in app.tasks
    ]
    assert missing == []
