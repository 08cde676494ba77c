"""gunicorn config for the benchmarks only: gunicorn sync as Mosaic ran it before issue #18.

Since gunicorn 25, a sync worker closes each connection the RFC 9112 (section 9.6) way: it
half-closes, then reads until the client closes too (up to 2 s or 64 KB), so that request bytes
the application left unread cannot turn the close into a TCP reset that destroys the response
before the client has read it. The worker waits for the client during that read. This file
replaces it with a plain close, to measure that wait, and nothing else.

Until issue #18 the Procfile ran gunicorn with config/gunicorn_conf.py, which closed at once
after a request read whole and lingered otherwise. The benchmarks' loads (GETs, read whole) only
ever took its plain-close branch, which is what this file does for every request: it stands for
that configuration in the comparisons (bench_servers.py's ``sync``, bench_decide.py's
``--baseline``). Mosaic now runs granian (config/web.py); gunicorn is a benchmark-only
dependency (the ``bench`` extra).
"""

import contextlib

from gunicorn import util


def _plain_close(sock, *args, **kwargs) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def post_fork(server, worker) -> None:
    # In each worker only; the workers look the function up on gunicorn.util at every close.
    util.close_graceful = _plain_close
