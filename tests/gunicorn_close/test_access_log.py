"""Issue #13 item 10: the web server's access log holds no visitor id, no query string and no
full client address. A real gunicorn with the project's config (config/gunicorn_conf.py) serves
the tests' tiny WSGI app and writes its access log to a file."""

from __future__ import annotations

import http.client
import time

import pytest

from tests.gunicorn_close.test_gunicorn_close import _start


@pytest.fixture
def logged_gunicorn(tmp_path):
    log = tmp_path / "access.log"
    process, port = _start(["-c", "python:config.gunicorn_conf", "--access-logfile", str(log)])
    yield port, log
    process.terminate()
    process.wait(10)


def _request(port: int, method: str, path: str, **headers: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, headers=headers)
    connection.getresponse().read()
    connection.close()


def test_access_log__requests_naming_visitors__logged_without_ids_queries_or_addresses(
    logged_gunicorn,
):
    port, log = logged_gunicorn
    # When requests name visitors in query strings, paths and the Referer
    _request(
        port,
        "GET",
        "/api/v1/decide?placements=hero&visitor=raw-visitor-1",
        Referer="https://shop.example/p?visitor=raw-visitor-4&utm_content=x",
    )
    _request(port, "GET", "/api/v1/profiles/raw-visitor-2/export")
    _request(port, "DELETE", "/api/v1/profiles/raw-visitor-3")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and log.read_text().count("\n") < 3:
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    # Then each request has its line, with the path and the network only
    assert len(lines) == 3
    text = "\n".join(lines)
    assert "raw-visitor" not in text
    assert "?" not in text
    assert "127.0.0.1" not in text
    assert "127.0.0.0" in lines[0]
    assert '"GET /api/v1/decide HTTP/1.1"' in lines[0]
    assert "https://shop.example/p" in lines[0]
    assert '"GET /api/v1/profiles/-/export HTTP/1.1"' in lines[1]
    assert '"DELETE /api/v1/profiles/- HTTP/1.1"' in lines[2]
