"""Issue #13 item 16 (the parts done here): a warning that would repeat once per request while a
store is down is logged at most once per interval; beat keeps its schedule under MOSAIC_VAR_DIR
(a missing directory is created, so beat does not exit and stop honcho); a segment recompute
that meets a profile deleted mid-run is retried."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import IntegrityError

from core import logs
from segments import tasks

ROOT = Path(__file__).resolve().parents[1]


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
    process = subprocess.Popen(["sh", "-c", line], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(var_dir.glob("celerybeat-schedule*")):
            assert process.poll() is None, "beat exited"
            time.sleep(0.2)
        # Then it runs, with its schedule in that directory
        assert list(var_dir.glob("celerybeat-schedule*"))
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(15)


def test_segment_recompute__integrity_error__retried():
    # A profile deleted by a merge mid-run surfaces as IntegrityError: the task retries it
    assert IntegrityError in tasks.segment_recompute.autoretry_for
    assert tasks.segment_recompute.max_retries == 5
