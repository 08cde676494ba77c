"""config/web.py: the web server's command line from the environment (no server started)."""

from __future__ import annotations

import pytest

from config.settings.env import SettingError
from config.web import granian_args


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_granian_args__defaults__documented_production_settings(monkeypatch):
    # Given no web settings in the environment
    names = "MOSAIC_BIND WEB_CONCURRENCY WEB_THREADS WEB_BACKPRESSURE WEB_HEADER_TIMEOUT_MS"
    others = ("WEB_KEEPALIVE", "WEB_MAX_RSS_MB", "WEB_LIFETIME_S", "WEB_RESPAWN_INTERVAL_S")
    for name in (*names.split(), *others):
        monkeypatch.delenv(name, raising=False)
    # When the command line is built
    args = granian_args()
    # Then it serves config.wsgi over WSGI on loopback with the documented defaults
    assert args[-1] == "config.wsgi:application"
    assert _option(args, "--interface") == "wsgi"
    assert (_option(args, "--host"), _option(args, "--port")) == ("127.0.0.1", "8000")
    assert _option(args, "--workers") == "2"
    assert _option(args, "--blocking-threads") == "1"
    assert _option(args, "--backpressure") == "512"
    assert _option(args, "--http1-header-read-timeout") == "5000"
    assert "--http1-keep-alive" in args
    assert "--no-access-log" in args  # Mosaic's scrubbed access log instead
    assert "--respawn-failed-workers" in args
    # A new worker gets 15 s to load before the one it replaces stops (reload, recycling)
    assert _option(args, "--respawn-interval") == "15"
    assert "--workers-max-rss" not in args
    assert "--workers-lifetime" not in args


def test_granian_args__environment__overrides(monkeypatch):
    # Given production settings in the environment
    monkeypatch.setenv("MOSAIC_BIND", "[::]:9000")
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setenv("WEB_KEEPALIVE", "false")
    monkeypatch.setenv("WEB_MAX_RSS_MB", "300")
    monkeypatch.setenv("WEB_LIFETIME_S", "10")
    # When the command line is built
    args = granian_args()
    # Then each one is applied (a lifetime under granian's minimum is raised to 60 s)
    assert (_option(args, "--host"), _option(args, "--port")) == ("::", "9000")
    assert _option(args, "--workers") == "4"
    assert "--no-http1-keep-alive" in args
    assert _option(args, "--workers-max-rss") == "300"
    assert _option(args, "--workers-lifetime") == "60"


def test_granian_args__bind_forms__as_make_run_prints_them(monkeypatch):
    # Given each form of MOSAIC_BIND that core.bind reads, the command line binds it
    for bind, expected in [
        ("0.0.0.0:8080", ["--host", "0.0.0.0", "--port", "8080"]),
        ("[::1]:8001", ["--host", "::1", "--port", "8001"]),
        ("localhost", ["--host", "localhost", "--port", "8000"]),
        ("unix:/run/mosaic.sock", ["--uds", "/run/mosaic.sock"]),
    ]:
        monkeypatch.setenv("MOSAIC_BIND", bind)
        args = granian_args()
        start = args.index(expected[0])
        assert args[start : start + len(expected)] == expected, bind


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("WEB_CONCURRENCY", "two", "1 to 512"),
        ("WEB_THREADS", "0", "1 to 512"),
        ("WEB_BACKLOG", "-1", "1 to 65535"),
        ("WEB_BACKPRESSURE", "1e9", "1 to 1000000"),
        ("WEB_HEADER_TIMEOUT_MS", "5s", "1 to 600000"),
        ("WEB_KEEPALIVE", "ture", "true, 1, yes, on, false, 0, no, off"),
        ("WEB_ACCESS_LOG", "flase", "true, 1, yes, on, false, 0, no, off"),
        ("WEB_KILL_TIMEOUT_S", "0", "1 to 3600"),
        ("WEB_LOG_LEVEL", "verbose", "critical, error, warning, warn, info, debug, notset"),
        ("WEB_MAX_RSS_MB", "-300", "0 to 1048576"),
        ("WEB_LIFETIME_S", "1h", "0 to 31536000"),
    ],
)
def test_granian_args__typo__refused_naming_variable_and_allowed(monkeypatch, name, value, allowed):
    # Given a web setting with a value the launcher does not know (it used to be read as the
    # default, or as false, or to fail with a bare ValueError)
    monkeypatch.setenv(name, value)
    # When the command line is built, Then it refuses, naming the variable and what is allowed
    with pytest.raises(SettingError) as refused:
        granian_args()
    assert str(refused.value).startswith(f"{name}={value!r} ")
    assert str(refused.value).endswith(f"allowed values: {allowed}")


def test_granian_args__blank_value__the_default(monkeypatch):
    # Given a variable set to blanks (as an env file may leave it), Then it counts as unset
    monkeypatch.setenv("WEB_CONCURRENCY", "  ")
    monkeypatch.setenv("WEB_KEEPALIVE", "")
    args = granian_args()
    assert _option(args, "--workers") == "2"
    assert "--http1-keep-alive" in args
