"""Stage 2's lower CPU priority (segments.tasks.run_at_lower_priority): a thread of its own."""

from __future__ import annotations

import os
import sys
import threading

import pytest
from django.db import connections

from segments.models import Profile
from segments.tasks import run_at_lower_priority

linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="per-thread nice values are a Linux feature"
)


def _own_priority() -> tuple[int, int]:
    tid = threading.get_native_id()
    return tid, os.getpriority(os.PRIO_PROCESS, tid)


@linux_only
def test_run_at_lower_priority__nice_5__runs_in_another_thread_5_steps_lower():
    # Given the calling thread's priority
    caller_tid, caller_nice = _own_priority()
    # When a function runs at 5 steps lower
    tid, nice = run_at_lower_priority(_own_priority, nice=5)
    # Then it ran in another thread, at the lower priority, and the caller kept its own
    assert tid != caller_tid
    assert nice == min(19, caller_nice + 5)
    assert _own_priority() == (caller_tid, caller_nice)


def test_run_at_lower_priority__nice_0__runs_in_the_calling_thread():
    # Given / When a function runs with no lowering
    tid, _ = run_at_lower_priority(_own_priority, nice=0)
    # Then it ran right here
    assert tid == threading.get_native_id()


@linux_only
def test_run_at_lower_priority__function_raises__error_reaches_the_caller():
    # Given a function that fails (Celery's retry needs to see the error)
    def fails() -> None:
        raise ValueError("deadlock detected")

    # When / Then it is raised in the calling thread
    with pytest.raises(ValueError, match="deadlock detected"):
        run_at_lower_priority(fails, nice=3)


@linux_only
@pytest.mark.django_db(transaction=True)
def test_run_at_lower_priority__thread_used_the_database__its_connection_closed():
    # Given a function that queries the database from the thread
    Profile.objects.create(key="k-low-priority")

    def reads():
        found = Profile.objects.filter(key="k-low-priority").exists()
        return found, connections["default"]

    # When it runs at a lower priority
    found, thread_connection = run_at_lower_priority(reads, nice=2)
    # Then it saw committed data, and its connection did not outlive the thread
    assert found is True
    assert thread_connection.connection is None
    assert thread_connection is not connections["default"]
