"""gunicorn config for benchmarks/bench_servers.py only: what gunicorn's closing handshake costs.

Since gunicorn 25, a sync worker closes each connection the RFC 9112 (section 9.6) way: it
half-closes, then reads until the client closes too (up to 2 s or 64 KB), so that request bytes
the application left unread cannot turn the close into a TCP reset that destroys the response
before the client has read it. The worker waits for the client during that read. This file
replaces it with a plain close, to measure that wait, and nothing else.

Mosaic never runs this way. Its own config (config/gunicorn_conf.py, in the Procfile)
closes at once only after a request read whole, and lingers otherwise: a refused request (a 413,
a 401 before the body is read) must reach the client as that answer, not as a reset
(tests/gunicorn_close checks that case; run against this file, it gets a reset).
"""

import contextlib

from gunicorn import util


def _plain_close(sock, *args, **kwargs) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def post_fork(server, worker) -> None:
    # In each worker only; the workers look the function up on gunicorn.util at every close.
    util.close_graceful = _plain_close
