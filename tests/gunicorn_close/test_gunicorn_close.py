"""How the web process's gunicorn closes a connection (config/gunicorn_conf.py): at once
after a request read whole, with RFC 9112's lingering close when request bytes are left unread.

Against a real gunicorn (one sync worker) serving tests/gunicorn_close/app.py, driven over raw
sockets so that the client decides when it closes its side. No database."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import config.gunicorn_conf as conf
from config.gunicorn_conf import close_after_answer

ROOT = Path(__file__).resolve().parents[2]
ANSWER_SIZE = 4_000_000  # more than loopback transmits before the close


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(config: list[str]) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    command = [
        sys.executable, "-m", "gunicorn", *config, "--workers", "1",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
        "tests.gunicorn_close.app:application",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"gunicorn did not start (exit code {process.poll()})")


@pytest.fixture
def mosaic_gunicorn():
    process, port = _start(["-c", "python:config.gunicorn_conf"])
    yield port
    process.terminate()
    process.wait(10)


def _read_answer(sock: socket.socket) -> bytes:
    """Everything until the server's end of stream; raises ConnectionResetError on a reset."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _get(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def test_close__request_read_whole__worker_free_while_client_keeps_its_side_open(
    mosaic_gunicorn,
):
    # Given a client that read its whole answer but does not close its side of the connection
    first = _get(mosaic_gunicorn, "/read")
    assert _read_answer(first).endswith(b"read 0")
    try:
        # When a second client asks the (only) worker
        started = time.monotonic()
        second = _get(mosaic_gunicorn, "/read")
        answer = _read_answer(second)
        waited = time.monotonic() - started
        second.close()
    finally:
        first.close()
    # Then it is answered at once: the worker did not linger on the first connection (gunicorn's
    # own close would have waited up to 2 s for the first client's end of stream)
    assert answer.endswith(b"read 0")
    assert waited < 1.0


def test_close__post_body_read_whole__closes_at_once(mosaic_gunicorn):
    # Given a POST whose body the application reads, and a client that keeps its side open
    first = socket.create_connection(("127.0.0.1", mosaic_gunicorn), timeout=10)
    body = b"x" * 100_000
    head = b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
    first.sendall(head % len(body) + body)
    assert _read_answer(first).endswith(b"read 100000")
    try:
        # When the next client asks
        started = time.monotonic()
        second = _get(mosaic_gunicorn, "/read")
        _read_answer(second)
        second.close()
        # Then no lingering held the worker
        assert time.monotonic() - started < 1.0
    finally:
        first.close()


def test_close__body_refused_unread__answer_arrives_intact(mosaic_gunicorn):
    # Given an upload that the application refuses without reading it, with a large answer
    sock = socket.create_connection(("127.0.0.1", mosaic_gunicorn), timeout=10)
    body = b"y" * 60_000  # within what gunicorn's lingering close drains (64 KiB)
    head = b"POST /refuse?size=%d HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
    # When the client sends it whole, and only then reads
    sock.sendall(head % (ANSWER_SIZE, len(body)) + body)
    answer = _read_answer(sock)
    sock.close()
    # Then the 413 arrives whole: not cut short by a reset (a plain close with request bytes
    # unread resets the connection and drops what the server had not yet transmitted)
    assert answer.startswith(b"HTTP/1.1 413")
    assert len(answer.partition(b"\r\n\r\n")[2]) == ANSWER_SIZE
    assert answer.endswith(b"too large")


def test_close_after_answer__bytes_waiting__lingers_until_peer_closes():
    # Given a connection whose request was read whole but with more bytes waiting behind it
    server, client = socket.socketpair()
    client.sendall(b"GET /next HTTP/1.1\r\n\r\n")
    conf._request_read_whole = True
    # When the server closes while the client closes 0.3 s later
    threading.Timer(0.3, client.close).start()
    started = time.monotonic()
    close_after_answer(server, timeout=5)
    # Then it waited for the client (the lingering close), and the flag was consumed
    assert time.monotonic() - started >= 0.25
    assert conf._request_read_whole is False


def test_close_after_answer__read_whole_and_nothing_waiting__closes_at_once():
    # Given a connection whose request was read whole, nothing else waiting, the peer still open
    server, client = socket.socketpair()
    conf._request_read_whole = True
    # When the server closes
    started = time.monotonic()
    close_after_answer(server, timeout=5)
    # Then at once, and the peer sees a clean end of stream
    assert time.monotonic() - started < 0.2
    client.settimeout(1)
    assert client.recv(10) == b""
    client.close()


class _TLSLikeSocket:
    """What matters here of an ssl.SSLSocket: recv refuses flags."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def recv(self, size, flags=0):
        if flags:
            raise ValueError("non-zero flags not allowed in calls to recv() on SSLSocket")
        self.calls.append("recv")
        return b""

    def settimeout(self, timeout) -> None:
        pass

    def shutdown(self, how) -> None:
        self.calls.append("shutdown")

    def close(self) -> None:
        self.calls.append("close")


def test_close_after_answer__tls_socket__lingers_instead_of_failing():
    # Given a TLS connection (gunicorn can terminate TLS) whose request was read whole
    sock = _TLSLikeSocket()
    conf._request_read_whole = True
    # When it is closed
    close_after_answer(sock, timeout=1)
    # Then the peek's refusal is no error: gunicorn's lingering close ran (half-close first)
    assert sock.calls[0] == "shutdown"
    assert sock.calls[-1] == "close"
