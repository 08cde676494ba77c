"""Shared fixtures: a real redis-server for the session, a clean Redis per test, a real worker.

Nothing here fakes Redis or Celery: the session starts the embedded redis-server binary (or one
on PATH) on a free loopback port, and worker tests start `celery worker` as a subprocess against
the same Redis and the test database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis
from hypothesis import settings as hypothesis_settings

from core.embedded_redis import redis_server_binary, server_args, wait_until_up

ROOT = Path(__file__).resolve().parents[1]

# Hypothesis: tests without their own `max_examples` (one-line functions) get 100 examples;
# HYPOTHESIS_PROFILE=thorough gives them 2,000 (a nightly run, not `make test`).
hypothesis_settings.register_profile("mosaic", max_examples=100, deadline=None)
hypothesis_settings.register_profile("thorough", max_examples=2000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "mosaic"))
SHARED = ROOT.parent / "shared"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url():
    binary = redis_server_binary()
    if binary is None:
        pytest.exit("No redis-server: install the 'embedded' extra (make test does).", returncode=3)
    port = _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="mosaic-test-redis-"))
    process = subprocess.Popen(
        server_args(binary, port=port, data_dir=data_dir, persistent=False),
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_until_up(redis.Redis.from_url(url))
    yield url
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _use_test_redis(redis_url):
    from django.conf import settings

    from config.celery import app as celery_app

    settings.REDIS_URL = redis_url
    settings.CELERY_BROKER_URL = redis_url
    celery_app.conf.broker_url = redis_url


@pytest.fixture(autouse=True)
def _clean_redis(redis_url):
    from personalization import profile_cache
    from personalization.snapshot import holder

    redis.Redis.from_url(redis_url).flushdb()
    # A fresh profile cache per test: the old one would hear of this flush only asynchronously.
    profile_cache.reset()
    holder.reset()
    yield
    holder.reset()


@pytest.fixture(autouse=True)
def _clean_process_caches():
    """In-process caches outlive a test's database rows: the API-key cache (10 s) and the
    exposure dedupe memory, the recommendations' serving state. Emptied around every test so no
    test sees another's keys, visitors or catalog."""
    from access import selectors
    from access import services as access_services
    from core import logs
    from experiments import services as exposure_services
    from recommendations import serving

    selectors.caches_clear()
    # The rate limiter's local counts name keys by id, which a fresh database hands out again.
    access_services.rate_limits_reset()
    # Recommendation serving state is keyed by the snapshot version, which starts again from
    # the same numbers in every test's fresh database and Redis: another test's catalog would match.
    serving.reset()
    exposure_services.exposures_recently_logged.clear()
    exposure_services.sticky_memo.clear()
    logs.reset()  # rate-limited warnings: each test sees its first one logged
    yield
    selectors.caches_clear()
    exposure_services.exposures_recently_logged.clear()
    exposure_services.sticky_memo.clear()


@pytest.fixture
def frozen_rate_window(monkeypatch) -> float:
    """Pin the rate limiter's clock to the middle of the current one-minute window.

    The limit counts requests in fixed windows of wall-clock minutes; a test whose requests
    straddle a minute boundary would see the count restart. Returns the pinned instant.
    """
    import types

    from access import services

    now = time.time()
    pinned = (now // services.WINDOW_SECONDS) * services.WINDOW_SECONDS + 30.0
    clock = types.SimpleNamespace(time=lambda: pinned, monotonic=time.monotonic)
    monkeypatch.setattr(services, "time", clock)
    return pinned


@pytest.fixture
def redis_client(redis_url) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


def _worker_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(
    redis_url: str, log: Path, *, pool_args: tuple[str, ...] = ("--pool", "solo"), **extra_env: str
) -> Worker:
    """A `celery worker` subprocess; `pool_args` choose its pool (solo unless a test needs the
    prefork pool of production, or extra options such as `--include`)."""
    from django.conf import settings

    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "DATABASE_URL": _worker_database_url(),
        "PSEUDONYMIZATION_KEY": settings.PSEUDONYMIZATION_KEY,
        "SECRET_KEY": settings.SECRET_KEY,
        **extra_env,
    }
    handle = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            *pool_args,
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while "ready" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Celery worker did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)
    return Worker(process, log)


@pytest.fixture
def celery_worker(redis_url, transactional_db, tmp_path):
    """A real `celery worker` subprocess on the test Redis and the test database."""
    worker = start_worker(redis_url, tmp_path / "worker.log")
    yield worker
    worker.process.terminate()
    try:
        worker.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.process.kill()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, message: str = ""):
    """Poll until predicate() is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(message or "condition not reached in time")
        time.sleep(interval)


@pytest.fixture
def celery_beat(redis_url, celery_worker, tmp_path):
    """A real `celery beat` subprocess beside the worker, with the time-driven task every second
    (MOSAIC_TIME_DUE_SECONDS=1; 15 s in production), so clock-driven tests wait seconds."""
    from django.conf import settings

    log = tmp_path / "beat.log"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "DATABASE_URL": _worker_database_url(),
        "PSEUDONYMIZATION_KEY": settings.PSEUDONYMIZATION_KEY,
        "SECRET_KEY": settings.SECRET_KEY,
        "MOSAIC_TIME_DUE_SECONDS": "1",
    }
    handle = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--schedule",
            str(tmp_path / "beat-schedule"),
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    yield log
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
