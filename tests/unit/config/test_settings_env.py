"""Settings validated at start-up: a typo in an enumerated or bounded variable is refused, naming
the variable and the allowed values (config/settings/env.py, MosaicEnv)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings.env import MosaicEnv, SettingError

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    """A minimal environment whose secrets are generated under a private var dir."""
    return {"MOSAIC_VAR_DIR": str(tmp_path)}


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("MOSAIC_CONSENT_DEFAULT", "optout", "opt-out, opt-in"),
        ("MOSAIC_UNDECLARED_TRAITS", "rejct", "accept, reject"),
        ("LOG_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("MOSAIC_LOG_FORMAT", "xml", "json, plain"),
        ("MOSAIC_REQUIRE_API_KEY", "ture", "true, 1, yes, on, false, 0, no, off"),
        ("MOSAIC_PRODUCTION", "yes please", "true, 1, yes, on, false, 0, no, off"),
        ("MOSAIC_INGEST_LANES", "0", "1 to 64"),
        ("MOSAIC_EVENT_RETENTION_DAYS", "-1", "1 to 36500"),
        ("EVENT_MAX_BATCH", "lots", "1 to 10000"),
        ("MOSAIC_RENDER_BUDGET_MS", "nan", "0.1 to 60000"),
        ("MOSAIC_PROFILE_CACHE_SIZE", "1e9", "0 to 10000000"),
        ("MOSAIC_EMBEDDED_REDIS_PORT", "70000", "1 to 65535"),
        ("MOSAIC_TIME_DUE_SECONDS", "0.5", "1.0 to 86400"),
        # segments, RFM, guardrails, static lists, webhooks (issue #15)
        ("MOSAIC_SEGMENT_RUN_BATCH", "0", "1 to 1000000"),
        ("MOSAIC_SEGMENT_RUN_YIELD_SECONDS", "-1", "0 to 60"),
        ("MOSAIC_SEGMENT_RUN_LEASE_SECONDS", "2m", "1 to 86400"),
        ("MOSAIC_RFM_WINDOW_DAYS", "0", "1 to 36500"),
        ("MOSAIC_RFM_RECOMPUTE_MINUTES", "hourly", "1 to 43200"),
        ("MOSAIC_SEGMENT_MIN_SIZE", "-5", "0 to 1000000000"),
        ("MOSAIC_PLACEMENT_MAX_SEGMENTS", "0", "1 to 10000"),
        ("MOSAIC_STATIC_LIST_MAX_IDS", "99999999999", "1 to 10000000"),
        ("MOSAIC_WEBHOOK_TIMEOUT_SECONDS", "inf", "0.1 to 300"),
        ("MOSAIC_WEBHOOK_MAX_ATTEMPTS", "0", "1 to 100"),
        ("MOSAIC_WEBHOOK_BACKOFF_SECONDS", "nan", "0 to 3600"),
        ("MOSAIC_WEBHOOK_ALLOW_LOOPBACK", "2", "true, 1, yes, on, false, 0, no, off"),
        # recommendations (issue #17)
        ("MOSAIC_RECS_TRAIN_MINUTES", "0", "1 to 43200"),
        ("MOSAIC_RECS_TUNING_SECONDS", "-1", "0 to 86400"),
        ("MOSAIC_RECS_THREADS", "all", "0 to 1024"),
    ],
)
def test_mosaic_env__unknown_value__refused_naming_variable_and_allowed(
    environ, name, value, allowed
):
    # Given a variable set to a value Mosaic does not know
    environ[name] = value
    # When the settings load, Then they refuse, naming the variable, the value and what is allowed
    with pytest.raises(SettingError) as refused:
        MosaicEnv.load(environ)
    message = str(refused.value)
    assert message.startswith(f"{name}={value!r} ")
    assert message.endswith(f"allowed values: {allowed}")


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("MOSAIC_CONSENT_DEFAULT", "opt-in", "consent_default", "opt-in"),
        ("MOSAIC_UNDECLARED_TRAITS", " reject ", "undeclared_traits", "reject"),
        ("LOG_LEVEL", "warning", "log_level", "WARNING"),
        ("MOSAIC_REQUIRE_API_KEY", "On", "require_api_key", True),
        ("MOSAIC_INGEST_LANES", "4", "ingest_lanes", 4),
        ("MOSAIC_AGGREGATE_YIELD_SECONDS", "0", "aggregate_yield_seconds", 0.0),
        ("MOSAIC_SEGMENT_RUN_BATCH", "500", "segment_run_batch", 500),
        ("MOSAIC_RFM_WINDOW_DAYS", "730", "rfm_window_days", 730),
        ("MOSAIC_WEBHOOK_TIMEOUT_SECONDS", "0.5", "webhook_timeout_seconds", 0.5),
        ("MOSAIC_WEBHOOK_ALLOW_LOOPBACK", "false", "webhook_allow_loopback", False),
        ("MOSAIC_WEBHOOK_ALLOW_LOOPBACK", "1", "webhook_allow_loopback", True),
        ("MOSAIC_RECS_TRAIN_MINUTES", "60", "recs_train_minutes", 60),
        ("MOSAIC_RECS_TUNING_SECONDS", "0", "recs_tuning_seconds", 0.0),
    ],
)
def test_mosaic_env__allowed_value__read(environ, name, value, field, expected):
    # Given an allowed value (case and spaces as an operator may type them)
    environ[name] = value
    # Then it is read as that value
    assert getattr(MosaicEnv.load(environ), field) == expected


def test_mosaic_env__nothing_set__embedded_defaults(environ):
    # Given no Mosaic variable, Then the defaults of the embedded set-up
    env = MosaicEnv.load(environ)
    assert (env.consent_default, env.undeclared_traits, env.ingest_lanes) == (
        "opt-out",
        "accept",
        2,
    )


def test_manage__settings_typo__refuses_to_start_with_the_variable_named():
    # When a command starts with a typo in an enumerated setting
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "MOSAIC_UNDECLARED_TRAITS": "rejct"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then it does not start, and says which variable and what it accepts
    assert result.returncode != 0
    assert "MOSAIC_UNDECLARED_TRAITS='rejct' is not allowed; allowed values: accept, reject" in (
        result.stderr
    )


def test_mosaic_env__retention_unset__395_days(environ):
    # Given no MOSAIC_EVENT_RETENTION_DAYS (read from this mapping, not the process environment)
    # Then events are kept 395 days (13 months)
    assert MosaicEnv.load(environ).event_retention_days == 395


def test_mosaic_env__production__webhooks_to_loopback_refused_by_default(environ):
    # Given production mode with its secrets and no MOSAIC_WEBHOOK_ALLOW_LOOPBACK
    environ.update(MOSAIC_PRODUCTION="true", SECRET_KEY="s" * 50, PSEUDONYMIZATION_KEY="p" * 50)
    # Then webhooks to loopback and private addresses are refused; the embedded set-up allows them
    assert MosaicEnv.load(environ).webhook_allow_loopback is False
    assert MosaicEnv.load({"MOSAIC_VAR_DIR": environ["MOSAIC_VAR_DIR"]}).webhook_allow_loopback


def test_manage__segment_setting_typo__refuses_to_start_with_the_variable_named():
    # When a command starts with a typo in a segment setting (read by config/settings/segments.py)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "MOSAIC_SEGMENT_RUN_BATCH": "2k"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then it does not start, and says which variable and what it accepts
    assert result.returncode != 0
    assert "MOSAIC_SEGMENT_RUN_BATCH='2k' is not an integer; allowed values: 1 to 1000000" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        # the broker defaults to REDIS_URL, which would be the cluster: refused
        ({}, "CELERY_BROKER_URL"),
        ({"CELERY_BROKER_URL": "redis://10.0.0.5:7000/0"}, "CELERY_BROKER_URL"),
        ({"REDIS_URL": "redis://10.0.0.5:7000/3"}, "REDIS_URL"),  # a cluster has database 0 only
        ({"REDIS_URL": "unix:///tmp/redis.sock"}, "REDIS_URL"),
    ],
)
def test_mosaic_env__redis_cluster_misconfigured__refused_naming_the_variable(
    environ, extra, named
):
    # Given MOSAIC_REDIS_CLUSTER=true with a broker on the cluster or a URL a cluster cannot be
    environ.update({"MOSAIC_REDIS_CLUSTER": "true", "REDIS_URL": "redis://10.0.0.5:7000/0"})
    environ.update(extra)
    # When the settings are read, Then they are refused, naming the variable
    with pytest.raises(SettingError, match=named):
        MosaicEnv.load(environ)


def test_mosaic_env__redis_cluster_with_its_own_broker__accepted(environ):
    # Given a cluster for the data and a single Redis for Celery's broker
    environ.update(
        {
            "MOSAIC_REDIS_CLUSTER": "yes",
            "REDIS_URL": "redis://10.0.0.5:7000",
            "CELERY_BROKER_URL": "redis://10.0.0.9:6379/0",
        }
    )
    # When the settings are read, Then both are kept as given
    env = MosaicEnv.load(environ)
    assert (env.redis_cluster, env.redis_url, env.celery_broker_url) == (
        True,
        "redis://10.0.0.5:7000",
        "redis://10.0.0.9:6379/0",
    )
    # And without the variable, REDIS_URL is a single server
    assert MosaicEnv.load({"MOSAIC_VAR_DIR": environ["MOSAIC_VAR_DIR"]}).redis_cluster is False
