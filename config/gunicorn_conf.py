"""gunicorn settings for Mosaic's web process: ``gunicorn -c python:config.gunicorn_conf``.

The Procfile and the HTTP benchmarks load it. What it changes is how a sync worker closes a
connection after its answer.

A sync worker answers one request per connection and then closes it. Since gunicorn 25 every
close is RFC 9112 section 9.6's: half-close, then read until the client closes too (up to 2 s).
That wait guards against one danger: if request bytes are left unread when a socket closes (a
body the application refused before reading it, say a 413 or a 401), the kernel answers them
with a reset, and a reset can destroy the answer before the client has read it. But the worker
is blocked for that wait on every request, although almost every request was read to its end
(a GET, a POST whose body the view read). On the decide benchmark a plain close measured 7-21 %
more throughput than the wait, and this file's close 2-8 % (docs/benchmarks.md).

So the worker lingers only when the danger exists, as nginx's default ``lingering_close on``
does ("only if heuristics suggests that a client may be sending more data"): when the request's
body was not read to its end (or could not be framed), or when more bytes are already waiting on
the socket. Otherwise it closes at once, which sends a FIN, not a reset: the client reads the
whole answer. What a plain close cannot cover is a client that sends again on the connection
after a complete request without waiting for the answer (HTTP pipelining, which browsers do
not do, across an answer that says ``Connection: close``); such bytes arrive after the check.

Threaded and async workers keep gunicorn's own close: they keep connections alive and the state
below is per process, not per connection.
"""

from __future__ import annotations

import socket

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.http.body import LengthReader

# gunicorn < 25 has no lingering close (and nothing to replace).
_graceful_close = getattr(util, "close_graceful", None)

# Whether the request last handled by this (sync, single-threaded) worker was read to its end:
# set by post_request, consumed by the next close. Reset before each request, so that a close
# that does not follow a finished request (a parse error, a crash mid-answer) lingers.
_request_read_whole = False


def request_read_whole(req) -> bool:
    """Whether nothing of `req`'s body is left on the socket: a Content-Length body (or none,
    which gunicorn frames as length 0) fully consumed, without a read error. A chunked body
    counts as not read whole: its end is not tracked."""
    body = getattr(req, "body", None)
    reader = getattr(body, "reader", None)
    failed = getattr(body, "failed", True)
    return isinstance(reader, LengthReader) and reader.length == 0 and not failed


def close_after_answer(sock, *args, **kwargs) -> None:
    """Close `sock` at once when its request was read whole and nothing more is waiting on it;
    else gunicorn's lingering close (its arguments pass through)."""
    global _request_read_whole
    read_whole, _request_read_whole = _request_read_whole, False
    if read_whole and not _bytes_waiting(sock):
        util.close(sock)
        return
    _graceful_close(sock, *args, **kwargs)


def _bytes_waiting(sock) -> bool:
    """Whether unread bytes wait on `sock` (an end of stream is not bytes: closing then is
    safe). A socket that fails the check is closed the careful way."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):  # ValueError: a TLS socket takes no recv flags
        return True


def pre_request(worker, req) -> None:
    global _request_read_whole
    _request_read_whole = False
    worker.log.debug("%s %s", req.method, req.path)  # what gunicorn's own hook does


def post_request(worker, req, environ, resp) -> None:
    global _request_read_whole
    _request_read_whole = request_read_whole(req)


def post_fork(server, worker) -> None:
    from gunicorn.workers.sync import SyncWorker

    # Exactly the sync worker (not a subclass with its own connection handling): the workers
    # look the function up on gunicorn.util at every close.
    if _graceful_close is not None and type(worker) is SyncWorker:
        util.close_graceful = close_after_answer


class PrivacyLogger(Logger):
    """gunicorn's logger, with an access log that names no visitor and no client (issue #13,
    item 10): the address truncated to its network, the request line and the Referer without
    query strings, a visitor id in a path replaced by "-" (core.access_log)."""

    def atoms(self, resp, req, environ, request_time):
        from core.access_log import scrubbed_path, scrubbed_url, truncated_address

        atoms = super().atoms(resp, req, environ, request_time)
        path = scrubbed_path(environ.get("PATH_INFO", "") or "")
        atoms["h"] = truncated_address(atoms.get("h", "") or "")
        atoms["r"] = f"{environ.get('REQUEST_METHOD')} {path} {environ.get('SERVER_PROTOCOL')}"
        atoms["U"] = path
        atoms["q"] = ""
        atoms["f"] = scrubbed_url(atoms.get("f", "") or "")
        for name in list(atoms):
            # headers and environment atoms ({referer}i, {...}e): no query strings in them
            if name.startswith("{") and isinstance(atoms[name], str):
                atoms[name] = scrubbed_url(atoms[name])
        return atoms


logger_class = PrivacyLogger
