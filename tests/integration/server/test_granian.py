"""What held under gunicorn holds under granian (issue #18): a real web process started the way
the Procfile starts it (``python -m config.web``), on the test database and Redis, driven over
real sockets. Issue #13 item 2 too: slow-header and half-closed clients do not stall it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.pseudonym import pseudonymize
from profiles.selectors import profile_cache_key
from tests.conftest import wait_for
from tests.factories import event, make_placement, make_variant

pytestmark = pytest.mark.timeout(120)


def _get(base: str, path: str, timeout: float = 10, **headers: str) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, response.read(), headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}


def _hero(base: str, visitor: str) -> str:
    status, body, _ = _get(base, f"/api/v1/decide?placements=hero&visitor={visitor}")
    assert status == 200, body
    return json.loads(body)["placements"]["hero"]["variant"]


def test_web_server__admin_static_and_decide__served(web_server):
    # Given the web process and a placement
    make_placement("hero")
    # When the admin's login page, a static file and a decision are asked for
    admin_status, admin_body, _ = _get(web_server.base, "/admin/login/")
    static_status, static_body, static_headers = _get(
        web_server.base, "/static/vendor/chart.js/chart.umd.js"
    )
    # Then each is served
    assert admin_status == 200
    assert b"csrfmiddlewaretoken" in admin_body
    assert static_status == 200
    assert len(static_body) > 10_000
    assert "javascript" in static_headers.get("content-type", "")
    assert _hero(web_server.base, "v-static") == "default"


def test_web_server__profile_changed_in_redis__next_decide_sees_it(web_server, redis_client):
    # Given a hero variant for gold visitors, and a visitor whose (cached) profile is not gold
    placement = make_placement("hero")
    make_variant(placement, "gold", condition={"profile.traits.tier": "gold"})
    key = profile_cache_key(pseudonymize("v-cache"))
    redis_client.set(key, json.dumps({"traits": {"tier": "silver"}}))
    for _ in range(6):  # both workers read it, and keep it in their profile caches
        assert _hero(web_server.base, "v-cache") == "default"
    # When the profile document changes in Redis (a write by another process)
    redis_client.set(key, json.dumps({"traits": {"tier": "gold"}}))
    # Then every later decision, in either worker, sees the new profile (the invalidation
    # thread of each worker dropped its cached copy)
    wait_for(lambda: _hero(web_server.base, "v-cache") == "gold", timeout=5)
    assert all(_hero(web_server.base, "v-cache") == "gold" for _ in range(10))


def test_web_server__variant_added__snapshot_rebuilt_in_every_worker(web_server):
    # Given a hero served by the running web process
    placement = make_placement("hero")
    for _ in range(4):
        assert _hero(web_server.base, "v-snap") == "default"
    # When an editor adds a variant that matches everyone (committed: the version is bumped)
    make_variant(placement, "everyone", condition={"request.hour": {"$gte": 0}})
    # Then both workers rebuild their snapshot and serve it
    # (each worker checks the version on its own clock: ten answers in a row, once both have)
    wait_for(
        lambda: all(_hero(web_server.base, "v-snap") == "everyone" for _ in range(10)),
        timeout=15,
    )


def _post_reading_while_sending(port: int, path: str, body: bytes) -> bytes:
    """What a client that reads the answer while it is still sending its body (as curl and
    browsers do) receives: everything until the server's end of stream."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    def send() -> None:
        # The server stops reading once it has answered: a failed send is expected.
        with contextlib.suppress(OSError):
            sock.sendall(head + body)

    sender = threading.Thread(target=send)
    sender.start()
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass  # what was read before the reset is what the client got
    sender.join(20)
    sock.close()
    return b"".join(chunks)


def test_web_server__body_over_limit__413_in_the_error_shape(web_server, settings):
    # Given a body four times larger than Django accepts
    body = b"[" + b"1," * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE * 2) + b"1]"
    for _ in range(5):
        # When it is posted to the events API by a client reading while it sends
        answer = _post_reading_while_sending(web_server.port, "/api/v1/events", body)
        # Then the client gets the JSON error shape with 413, not a reset or an HTML page
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), answer[:200]
        error = json.loads(payload)["errors"][0]
        assert error["message"]
        assert "field" in error
    # And the server still answers
    assert _get(web_server.base, "/healthz")[0] == 200


def test_web_server__access_log__no_visitor_ids_queries_or_addresses(web_server):
    # When requests name visitors in query strings, paths and the Referer
    make_placement("hero")
    _get(
        web_server.base,
        "/api/v1/decide?placements=hero&visitor=raw-visitor-1",
        Referer="https://shop.example/p?visitor=raw-visitor-4&utm_content=x",
    )
    _get(web_server.base, "/api/v1/profiles/raw-visitor-2/export")
    # Then each request has its line, with the path and the client's network only
    wait_for(lambda: "/api/v1/profiles/-/export" in web_server.output(), timeout=10)
    lines = [line for line in web_server.output().splitlines() if '"GET /api/' in line]
    text = "\n".join(lines)
    assert "raw-visitor" not in text
    assert len(lines) == 2, web_server.output()
    # (nor does anything else the web process writes: Django's "Forbidden: <path>" line included)
    assert "Forbidden" in web_server.output()
    assert "raw-visitor" not in web_server.output()
    assert "127.0.0.1" not in text
    assert lines[0].startswith("127.0.0.0 - - [")
    assert '"GET /api/v1/decide HTTP/1.1" 200' in lines[0]
    assert '"https://shop.example/p"' in lines[0]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_web_server__stop_signal_with_requests_in_flight__each_answered_then_exit(
    web_server, stop_signal
):
    # Given 8 clients in the middle of their requests (headers and half of the body sent)
    body = json.dumps(
        {"events": [event(f"v-term-{i}") for i in range(20)]}, separators=(",", ":")
    ).encode()
    sockets = []
    for _ in range(8):
        sock = socket.create_connection(("127.0.0.1", web_server.port), timeout=20)
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        sockets.append(sock)
    time.sleep(1)
    # When the server is told to stop (SIGTERM from honcho and supervisors, SIGINT from Ctrl-C),
    # and the clients then send the rest of their bodies
    web_server.process.send_signal(stop_signal)
    time.sleep(1)
    answers = []
    for sock in sockets:
        sock.sendall(body[len(body) // 2 :])
    for sock in sockets:
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunks[-1]:
                    break
        except OSError as error:
            chunks.append(repr(error).encode())
        answers.append(b"".join(chunks))
        sock.close()
    # Then every request in flight got its answer, and the server exited cleanly
    assert all(answer.startswith(b"HTTP/1.1 202") for answer in answers), answers
    assert web_server.process.wait(20) == 0, web_server.output()
    # And new connections are refused
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", web_server.port), timeout=5)


def _probe_while(base: str, seconds: float) -> list[float]:
    """Health probes (each on a new connection) every 0.25 s for `seconds`: their latencies
    (inf for a probe not answered 200 within 2 s)."""
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            status = _get(base, "/healthz", timeout=2)[0]
            latencies.append(time.monotonic() - start if status == 200 else float("inf"))
        except OSError:
            latencies.append(float("inf"))
        time.sleep(0.25)
    return latencies


def test_web_server__24_slow_header_clients__probes_answered_and_clients_cut_off(web_server):
    # Given 24 slowloris connections, each sending its request headers one byte a second
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    stop = threading.Event()
    closed_after: list[float] = []

    def slow_client() -> None:
        sock = socket.create_connection(("127.0.0.1", web_server.port), timeout=30)
        started = time.monotonic()
        try:
            for byte in request:
                if stop.is_set():
                    return
                sock.sendall(bytes([byte]))
                time.sleep(1)
        except OSError:  # the server cut the connection off
            closed_after.append(time.monotonic() - started)
        finally:
            sock.close()

    clients = [threading.Thread(target=slow_client) for _ in range(24)]
    for client in clients:
        client.start()
    # When health probes arrive meanwhile for 8 s
    latencies = _probe_while(web_server.base, 8)
    # Then every probe is answered promptly
    assert latencies
    assert max(latencies) < 2, latencies
    # And the slow clients are cut off by the header timeout (5 s), not kept forever
    wait_for(lambda: len(closed_after) == 24, timeout=20, message=f"cut off: {closed_after}")
    stop.set()
    for client in clients:
        client.join(10)
    assert max(closed_after) < 12


def test_web_server__24_unread_bodies_from_clients_ignoring_fin__probes_answered(web_server):
    # Given 24 clients that post a large body the server refuses without reading (an unknown
    # path), send only part of it, never read the answer and never close their side
    sockets = []
    for _ in range(24):
        sock = socket.create_connection(("127.0.0.1", web_server.port), timeout=10)
        sock.sendall(
            b"POST /api/v1/no-such-endpoint HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 65536
        )
        sockets.append(sock)
    try:
        # When health probes arrive meanwhile for 6 s
        latencies = _probe_while(web_server.base, 6)
        # Then every probe is answered promptly
        assert max(latencies) < 2, latencies
    finally:
        for sock in sockets:
            sock.close()
    assert _get(web_server.base, "/healthz")[0] == 200


def _workers(pid: int) -> set[int]:
    """The granian worker processes of the server `pid` (its children running granian, from
    /proc; a helper such as multiprocessing's resource tracker is not one)."""
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"granian" in command:
                children.add(int(entry))
    return children


def test_web_server__sighup__workers_replaced_then_answering(web_server):
    # Given the running web process and its two workers
    before = wait_for(
        lambda: w if len(w := _workers(web_server.process.pid)) == 2 else None, timeout=10
    )
    # When it is told to reload (SIGHUP: new code or settings after a deploy), probed through
    # the whole replacement (each new worker gets WEB_RESPAWN_INTERVAL_S, 15 s, to load)
    web_server.process.send_signal(signal.SIGHUP)
    latencies = _probe_while(web_server.base, 2 * 15 + 5)
    # Then new workers replaced the old ones, and the probes were answered throughout. At most
    # one may fail: granian stops an old worker without handing over the connections still
    # queued on its own socket (docs/architecture.md, "Reload"). With granian's default respawn
    # interval of 3.5 s, hundreds of probes were refused
    # (tests/integration/server/test_reload_probe.py).
    after = wait_for(
        lambda: w if len(w := _workers(web_server.process.pid)) == 2 and not (w & before) else None,
        timeout=30,
    )
    assert not (after & before)
    assert sum(latency == float("inf") for latency in latencies) <= 1, latencies
    assert max(latencies[len(latencies) // 2 :]) < 2, latencies
