"""Mosaic's web process: granian serving config.wsgi over WSGI (``python -m config.web``).

The Procfile, ``make run``, the HTTP benchmarks and the server tests start the web server
through this module, so that its settings live in one place (docs/architecture.md, "Processes",
says why each one). Environment (all optional):

- ``MOSAIC_BIND`` (``127.0.0.1:8000``): address and port.
- ``WEB_CONCURRENCY`` (2): worker processes, one per core.
- ``WEB_THREADS`` (1): threads running the WSGI application in each worker. One: the work is
  CPU-bound Python under one GIL, and a second thread only adds switching (docs/benchmarks.md).
- ``WEB_BACKPRESSURE`` (512): connections a worker holds at once (reading, queued for the
  application thread, writing); more wait in the kernel's accept queue (``WEB_BACKLOG``, 1024).
  High on purpose: a connection still sending its headers holds a slot (at most
  ``WEB_HEADER_TIMEOUT_MS``), so slots are what slow clients would exhaust (docs/security.md).
- ``WEB_HEADER_TIMEOUT_MS`` (5000): a client has this long to send its request headers (a
  slow-header client is cut off then: docs/security.md, "Slow and half-closed clients").
- ``WEB_KEEPALIVE`` (``true``): HTTP/1.1 keep-alive.
- ``WEB_MAX_RSS_MB`` (0: off): a worker over this resident size is replaced (worker recycling).
- ``WEB_LIFETIME_S`` (0: off): a worker older than this is replaced (worker recycling, ≥ 60).
- ``WEB_KILL_TIMEOUT_S`` (10): how long a stopping worker may finish its requests before it is
  killed (SIGTERM/SIGINT: graceful stop; SIGHUP: the workers replaced, not fully graceful).
- ``WEB_RESPAWN_INTERVAL_S`` (15): on a reload (SIGHUP) or a recycling, how long a new worker
  gets to load the application before the old one it replaces is stopped. granian stops the old
  worker after this time whether the new one is ready or not, and on Linux each worker listens
  on its own socket: with granian's default of 3.5 s, a reload on a busy 2-core machine refused
  most connections for seconds (docs/architecture.md, "Reload").
- ``WEB_ACCESS_LOG`` (``true``): Mosaic's own access log (config/access_log.py) on stdout;
  granian's is off because it would log full client addresses and query strings.
"""

from __future__ import annotations

import os
import sys

ENTRY = "config.wsgi:application"


# granian's --log-level values.
LOG_LEVELS = ("critical", "error", "warning", "warn", "info", "debug", "notset")


def _reader():
    """The settings' validating reader over this environment (a typo refuses to start, naming
    the variable and its allowed values); a variable set to blanks counts as unset."""
    from config.settings.env import _Reader

    return _Reader({name: value for name, value in os.environ.items() if value.strip()})


def granian_args(entry: str = ENTRY, bind: str | None = None) -> list[str]:
    """granian's command-line arguments for Mosaic's web process (without the program name)."""
    env = _reader()
    bind = (bind or os.environ.get("MOSAIC_BIND", "")).strip() or "127.0.0.1:8000"
    # The forms core.bind (what `make run` prints) reads: host:port, [v6]:port, host, unix:path.
    if bind.startswith("unix:"):
        address = ["--uds", bind.removeprefix("unix:")]
    else:
        if bind.startswith("[") and "]:" in bind:
            host, port = bind[1:].split("]:", 1)
        elif ":" in bind:
            host, _, port = bind.rpartition(":")
        else:
            host, port = bind, "8000"
        address = ["--host", host.strip("[]") or "127.0.0.1", "--port", port]
    args = [
        "--interface", "wsgi",
        *address,
        "--http", "1",
        "--no-ws",
        "--workers", str(env.integer("WEB_CONCURRENCY", 2, 1, 512)),
        "--blocking-threads", str(env.integer("WEB_THREADS", 1, 1, 512)),
        # An idle application thread (and its database connection) is kept for 10 minutes.
        "--blocking-threads-idle-timeout", "600",
        "--runtime-threads", "1",
        "--backlog", str(env.integer("WEB_BACKLOG", 1024, 1, 65_535)),
        "--backpressure", str(env.integer("WEB_BACKPRESSURE", 512, 1, 1_000_000)),
        "--http1-header-read-timeout", str(env.integer("WEB_HEADER_TIMEOUT_MS", 5000, 1, 600_000)),
        "--http1-keep-alive" if env.boolean("WEB_KEEPALIVE", True) else "--no-http1-keep-alive",
        "--respawn-failed-workers",
        "--respawn-interval", f"{env.number('WEB_RESPAWN_INTERVAL_S', 15.0, 0.1, 600):g}",
        "--workers-kill-timeout", str(env.integer("WEB_KILL_TIMEOUT_S", 10, 1, 3600)),
        "--no-access-log",
        "--log-level", env.choice("WEB_LOG_LEVEL", LOG_LEVELS, "warning"),
    ]  # fmt: skip
    # Read by config/wsgi.py in each worker; validated here so that a typo refuses to start.
    env.boolean("WEB_ACCESS_LOG", True)
    if max_rss := env.integer("WEB_MAX_RSS_MB", 0, 0, 1_048_576):
        args += ["--workers-max-rss", str(max_rss), "--rss-samples", "3"]
    if lifetime := env.integer("WEB_LIFETIME_S", 0, 0, 31_536_000):
        args += ["--workers-lifetime", str(max(60, lifetime))]
    return [*args, entry]


def metrics_dir_claim() -> None:
    """Claim the Prometheus multiprocess directory before granian starts its workers.

    granian's workers are separate processes that inherit this environment: they all write
    their metrics under the one group directory ``<var>/prometheus/<pid>`` (this process's pid,
    which granian keeps: ``execv``), so ``/metrics`` sums them (core/metrics_dir.py). Directories
    of groups no longer alive are removed here, at each start of the web process.
    """
    from config.settings.env import ENV
    from core import metrics_dir

    metrics_dir.claim(ENV.var_dir / "prometheus")


def main() -> None:
    """Replace this process with granian (signals then reach granian itself)."""
    metrics_dir_claim()
    argv = [sys.executable, "-m", "granian", *granian_args(*sys.argv[1:2])]
    os.execv(sys.executable, argv)


if __name__ == "__main__":
    main()
