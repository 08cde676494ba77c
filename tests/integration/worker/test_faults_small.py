"""Issue #13 item 16 (the parts done here): a warning that would repeat once per request while a
store is down is logged at most once per interval; beat keeps its schedule under MOSAIC_VAR_DIR
(a missing directory is created, so beat does not exit and stop honcho); a segment recompute
that meets a profile deleted mid-run is retried."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import IntegrityError

from core import logs
from segments import tasks

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.django_db
def test_decide__redis_down_under_load__warnings_rate_limited(client, settings, caplog):
    # Given Redis down, and decides flowing
    logs.reset()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    caplog.set_level(logging.WARNING)
    for i in range(40):
        response = client.get("/api/v1/decide", {"placements": "hero", "visitor": f"v{i}"})
        assert response.status_code == 200
    # Then the "Redis unavailable" warning of decide was logged once, not 40 times
    lines = [r for r in caplog.records if "Redis unavailable, deciding" in r.getMessage()]
    assert len(lines) == 1


def test_warn_limited__after_the_interval__logs_again_with_the_count_left_out(caplog):
    logs.reset()
    caplog.set_level(logging.WARNING)
    logger = logging.getLogger("tests.limited")
    assert logs.warn_limited(logger, "k", "store down", interval=0.2) is True
    assert [logs.warn_limited(logger, "k", "store down", interval=0.2) for _ in range(5)] == [
        False
    ] * 5
    time.sleep(0.25)
    assert logs.warn_limited(logger, "k", "store down", interval=0.2) is True
    messages = [r.getMessage() for r in caplog.records if r.name == "tests.limited"]
    assert messages[0] == "store down"
    assert "5 more like it" in messages[1]


def test_procfile_beat__missing_var_dir__created_and_schedule_kept_there(tmp_path, redis_url):
    # Given a MOSAIC_VAR_DIR that does not exist yet
    var_dir = tmp_path / "fresh-var"
    line = next(
        line.split(":", 1)[1].strip()
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.startswith("beat:")
    )
    env = {
        **os.environ,
        "MOSAIC_VAR_DIR": str(var_dir),
        "CELERY_BROKER_URL": redis_url,
        # as `make run` starts honcho: the virtualenv's commands first on PATH
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    # When beat starts as the Procfile starts it
    process = subprocess.Popen(["sh", "-c", line], cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(var_dir.glob("celerybeat-schedule*")):
            assert process.poll() is None, "beat exited"
            time.sleep(0.2)
        # Then it runs, with its schedule in that directory
        assert list(var_dir.glob("celerybeat-schedule*"))
        assert process.poll() is None
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group this test started (the shell, the supervisor, its child)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def _supervise(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "config.supervise", *args], cwd=ROOT, start_new_session=True
    )


def test_supervise__command_exits__restarted_then_stops_on_sigterm(tmp_path):
    # Given a command that dies at once (as a worker killed by a broker outage)
    runs = tmp_path / "runs"
    command = f"open({str(runs)!r}, 'a').write('x'); raise SystemExit(1)"
    process = _supervise(tmp_path, "--", sys.executable, "-c", command)
    try:
        # Then it is started again and again (1 s, then 2 s pauses)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(runs.read_text() if runs.exists() else "") < 2:
            time.sleep(0.2)
        assert len(runs.read_text()) >= 2
        assert process.poll() is None
    finally:
        # And SIGTERM stops the supervisor itself (honcho's stop still works)
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(20) is not None
        _stop_group(process)


def test_supervise__liveness_file_stale__hung_command_killed_and_restarted(tmp_path):
    # Given a command that hangs without ever touching its liveness file
    runs = tmp_path / "runs"
    command = f"open({str(runs)!r}, 'a').write('x'); import time; time.sleep(600)"
    process = _supervise(
        tmp_path,
        "--liveness-file",
        str(tmp_path / "alive"),
        "--max-age",
        "1",
        "--",
        sys.executable,
        "-c",
        command,
    )
    try:
        # Then it is killed after max-age and started again
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(runs.read_text() if runs.exists() else "") < 2:
            time.sleep(0.2)
        assert len(runs.read_text()) >= 2
    finally:
        _stop_group(process)


def test_worker__liveness_file__touched_by_a_running_worker(redis_url, tmp_path, transactional_db):
    # Given a real Celery worker started with a liveness file
    from tests.conftest import start_worker

    alive = tmp_path / "worker-alive"
    worker = start_worker(
        redis_url, tmp_path / "worker.log", MOSAIC_WORKER_LIVENESS_FILE=str(alive)
    )
    try:
        # Then the file appears and keeps being touched while the worker runs
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not alive.exists():
            time.sleep(0.2)
        assert alive.exists()
        first = alive.stat().st_mtime
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and alive.stat().st_mtime == first:
            time.sleep(0.2)
        assert alive.stat().st_mtime > first
    finally:
        worker.process.terminate()
        try:
            worker.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.process.kill()


def test_segment_recompute__integrity_error__retried():
    # A profile deleted by a merge mid-run surfaces as IntegrityError: the task retries it
    assert IntegrityError in tasks.segment_recompute.autoretry_for
    assert tasks.segment_recompute.max_retries == 5


HOLD_LANE = """
import django, sys, time
django.setup()
from core.redis import get_redis
from ingestion import store
lane = store._lane_acquire(get_redis())
print("held", lane[0], flush=True)
time.sleep(600)
"""


def test_ingestion_lane__run_killed__lane_free_within_one_lease(redis_url, redis_client):
    # Given a run holding an ingestion lane for longer than its lease (renewed while it lives)
    from ingestion import queue as ingestion_queue

    env = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LANE], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().startswith("held")
        lease = ingestion_queue.lock_lease_seconds()
        time.sleep(lease + 2)
        assert redis_client.exists(ingestion_queue.INGEST_LOCK)  # still held: the lease was renewed
        # When the run is killed (no chance to release its lock)
        process.kill()
        process.wait(10)
        killed = time.monotonic()
        # Then the lane is free within one lease, not after MOSAIC_INGEST_LOCK_SECONDS (60 s)
        while redis_client.exists(ingestion_queue.INGEST_LOCK) and time.monotonic() - killed < 60:
            time.sleep(0.2)
        assert time.monotonic() - killed <= lease + 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
