"""A real web process (granian through config/web.py, as the Procfile starts it) on the test
database and the test Redis, for the tests of this folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import _worker_database_url

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WebServer:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


def start_web_server(redis_url: str, log: Path, **extra_env: str) -> WebServer:
    """`python -m config.web` (granian, the Procfile's command) on a free loopback port; waits
    until /healthz answers."""
    from django.conf import settings

    port = _free_port()
    env = {
        **os.environ,
        "MOSAIC_BIND": f"127.0.0.1:{port}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "DATABASE_URL": _worker_database_url(),
        "PSEUDONYMIZATION_KEY": settings.PSEUDONYMIZATION_KEY,
        "SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "WEB_CONCURRENCY": "2",
        **extra_env,
    }
    handle = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "config.web"],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    server = WebServer(process, port, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{server.base}/healthz", timeout=2).read()
            return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop(signal.SIGKILL)
                pytest.fail(f"web server did not start:\n{server.output()}")
            time.sleep(0.2)


@pytest.fixture
def web_server(redis_url, transactional_db, tmp_path):
    """The web process as production runs it (2 workers), on the test database and Redis."""
    server = start_web_server(redis_url, tmp_path / "web.log")
    yield server
    server.stop()
