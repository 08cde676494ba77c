"""Optional error reporting (sentry-sdk, MOSAIC_SENTRY_DSN): off without a DSN; with one, an
unhandled error reaches a real HTTP receiver on loopback without personal data."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from config.settings.env import MosaicEnv, SettingError
from core.error_reporting import event_scrubbed
from tests.conftest import ROOT

pytest.importorskip("sentry_sdk")  # the `sentry` extra (in `dev` too)

ALICE, BOB = "alice-secret-42", "bob-secret-77"

# Requests that fail, served by config.wsgi (as under granian, whose WSGI entry sentry-sdk wraps)
# in a fresh process: sentry-sdk's client is global, and started here it would report every later
# test's errors. Prints the statuses and whether sentry-sdk was ever imported.
REQUESTS = f"""
import json, sys, threading, urllib.error, urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

from config.wsgi import application
from django.test.utils import override_settings

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

def status(request):
    try:
        return urllib.request.urlopen(request, timeout=30).status
    except urllib.error.HTTPError as error:
        return error.code

with override_settings(ROOT_URLCONF="tests.integration.api.error_urls"):
    server = make_server("127.0.0.1", 0, application, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{{server.server_port}}"
    statuses = [
        status(f"{{base}}/broken?visitor={ALICE}&placements=hero"),
        status(urllib.request.Request(
            f"{{base}}/broken",
            data=json.dumps({{"events": [{{"visitor": "{BOB}", "type": "page_view"}}]}}).encode(),
            headers={{"Content-Type": "application/json", "Cookie": "sessionid={ALICE}"}},
        )),
    ]
    server.shutdown()
loaded = "sentry_sdk" in sys.modules
if loaded:
    sys.modules["sentry_sdk"].flush(timeout=10)
print(json.dumps({{"statuses": statuses, "sentry_loaded": loaded}}))
"""


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(body)
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A real HTTP server on loopback that keeps every envelope posted to it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run(tmp_path, redis_url, **extra_env: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MOSAIC_SENTRY_DSN", "DATABASE_URL", "SECRET_KEY", "PSEUDONYMIZATION_KEY")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        MOSAIC_VAR_DIR=str(tmp_path),
        REDIS_URL=redis_url,
        MOSAIC_LOG_FORMAT="plain",
        WEB_ACCESS_LOG="false",
        **extra_env,
    )
    result = subprocess.run(
        [sys.executable, "-c", REQUESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _events(bodies: list[bytes]) -> list[dict]:
    """The error events of Sentry envelopes (header line, then item header and payload lines)."""
    events = []
    for body in bodies:
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def test_error_reporting__dsn_unset__sentry_never_started(tmp_path, redis_url, receiver):
    # Given no MOSAIC_SENTRY_DSN
    # When a request fails with an unhandled error
    outcome = _run(tmp_path, redis_url)
    # Then it is a 500 and sentry-sdk was not even imported; nothing was sent anywhere
    assert outcome == {"statuses": [500, 500], "sentry_loaded": False}
    assert receiver.bodies == []


def test_error_reporting__dsn_set__error_sent_without_personal_data(tmp_path, redis_url, receiver):
    # Given a DSN pointing at a receiver on loopback
    dsn = f"http://publickey@127.0.0.1:{receiver.server_port}/42"
    # When two requests naming visitors (query string, JSON body) fail with unhandled errors
    outcome = _run(tmp_path, redis_url, MOSAIC_SENTRY_DSN=dsn)
    # Then both errors reached the receiver
    assert outcome == {"statuses": [500, 500], "sentry_loaded": True}
    events = _events(receiver.bodies)
    assert len(events) == 2, receiver.bodies
    for event in events:
        (exception,) = event["exception"]["values"]
        assert exception["type"] == "ValueError"
        assert exception["value"] == "cannot decide for visitor [visitor]"
        # And the request is reduced to its method and scrubbed URL; no user, no locals
        assert set(event["request"]) == {"method", "url", "headers"}
        assert event["request"]["url"].endswith("/broken")
        assert set(event["request"]["headers"]) <= {"Content-Type", "Content-Length", "Accept"}
        assert "user" not in event
        frames = exception["stacktrace"]["frames"]
        assert frames
        assert all("vars" not in frame for frame in frames)
    # And no visitor id is anywhere in what was sent
    sent = b"".join(receiver.bodies)
    assert ALICE.encode() not in sent
    assert BOB.encode() not in sent


def test_event_scrubbed__profile_path__visitor_in_path_redacted():
    # Given an event of a failed erasure: the visitor id is in the path and the message
    event = {
        "request": {
            "url": "http://mosaic.example/api/v1/profiles/carol%2B99/export",
            "method": "GET",
            "cookies": {"sessionid": "s"},
            "headers": {"Cookie": "sessionid=s", "Accept": "application/json"},
            "env": {"REMOTE_ADDR": "203.0.113.9"},
        },
        "message": "export failed for carol+99",
        "extra": {"celery-job": {"task_name": "t", "args": ["carol+99"], "kwargs": {}}},
    }
    # When it is scrubbed
    scrubbed = event_scrubbed(event)
    # Then the path's id, the message's id, cookies, headers and the address are gone
    assert scrubbed["request"] == {
        "method": "GET",
        "url": "http://mosaic.example/api/v1/profiles/-/export",
        "headers": {"Accept": "application/json"},
    }
    assert scrubbed["message"] == "export failed for [visitor]"
    assert scrubbed["extra"] == {"celery-job": {"task_name": "t"}}


@pytest.mark.parametrize(
    "dsn",
    [
        "publickey@127.0.0.1/1",
        "ftp://publickey@127.0.0.1/1",
        "http://127.0.0.1:9000/1",
        "http://publickey@127.0.0.1:9000/project",
        "http://publickey@127.0.0.1:99999/1",
    ],
)
def test_mosaic_env__sentry_dsn_malformed__refused_naming_the_variable(tmp_path, dsn):
    # Given a value that is not a Sentry DSN
    environ = {"MOSAIC_VAR_DIR": str(tmp_path), "MOSAIC_SENTRY_DSN": dsn}
    # Then the settings refuse it, naming the variable and what it accepts (not echoing the key)
    with pytest.raises(SettingError) as refused:
        MosaicEnv.load(environ)
    assert str(refused.value).startswith("MOSAIC_SENTRY_DSN is not a Sentry DSN; allowed values:")
    assert "publickey" not in str(refused.value)
