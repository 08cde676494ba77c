"""The web process's access log, written by Mosaic itself around the WSGI application.

granian's own access log would hold each client's full address and every query string
(decide's ``?visitor=``) and cannot scrub them, so it stays off (config/web.py) and this wrapper
writes one line per request in gunicorn's (Apache combined) format instead, with what
core.access_log allows: the client's network, not its address; the path without query string
and with a visitor id in it replaced by "-"; the Referer without query string (issue #13,
item 10). Lines go to stdout (``WEB_ACCESS_LOG=false`` turns them off).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable

from core.access_log import scrubbed_path, scrubbed_url, truncated_address


class ScrubbedRequestPaths(logging.Filter):
    """Django's own request log ("Forbidden: /api/v1/profiles/<visitor>/export", one WARNING per
    4xx) names the path, visitor ids included: the same scrubbing as the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                scrubbed_path(arg) if isinstance(arg, str) and arg.startswith("/") else arg
                for arg in record.args
            )
        return True


def request_log_scrubbed() -> None:
    """Install ScrubbedRequestPaths on Django's request logger (once)."""
    request_logger = logging.getLogger("django.request")
    if not any(isinstance(f, ScrubbedRequestPaths) for f in request_logger.filters):
        request_logger.addFilter(ScrubbedRequestPaths())


class _LineWriter:
    """Writes each access line to stdout at once (one write and a flush, as logging's
    StreamHandler would, under a lock for the application's threads), without the logging
    machinery around it: a record, the caller's frame, a formatter and the handler chain cost as
    much as the rest of the line, on every request (docs/benchmarks.md, issue #18). The lines
    stay bare, whatever the root logging configuration says."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            # sys.stdout looked up per line, as a StreamHandler made at start-up would not: a
            # process that replaces it (a test capturing output) gets the lines.
            stream = sys.stdout
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken stdout loses access lines, never an answer


_write_line = _LineWriter()


class _Clock:
    """The access line's timestamp, formatted once per second (time.strftime per request was a
    measurable share of the line's cost)."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            # One (second, text) pair replaced at once: another thread reads either old or new.
            self._text = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))
            self._second = second
        return self._text


_timestamp = _Clock()


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def access_line(environ: dict, status: str, length: str, seconds: float) -> str:
    """One request's line: network - - [time] "METHOD path PROTOCOL" status bytes "referer"
    "user agent" duration (no query string, no visitor id, no full address)."""
    when = _timestamp()
    request = " ".join(
        (
            environ.get("REQUEST_METHOD", "-"),
            scrubbed_path(environ.get("PATH_INFO", "") or ""),
            environ.get("SERVER_PROTOCOL", "-"),
        )
    )
    referer = scrubbed_url(environ.get("HTTP_REFERER", "") or "") or "-"
    agent = environ.get("HTTP_USER_AGENT", "") or "-"
    return (
        f"{truncated_address(environ.get('REMOTE_ADDR', '') or '')} - - [{when}]"
        f' "{_quoted(request)}" {status.split(" ", 1)[0]} {length or "-"}'
        f' "{_quoted(referer)}" "{_quoted(agent)}" {seconds * 1000:.1f}ms'
    )


def access_logged(application: Callable) -> Callable:
    """`application` (WSGI) with an access line logged per request, once its answer started."""

    def logged(environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: list = []

        def recording_start_response(status, headers, exc_info=None):
            seen[:] = [status, headers]
            return start_response(status, headers, exc_info)

        try:
            return application(environ, recording_start_response)
        finally:
            status, headers = seen or ("500", [])
            length = next((v for k, v in headers if k.lower() == "content-length"), "-")
            _write_line(access_line(environ, status, length, time.perf_counter() - started))

    return logged
