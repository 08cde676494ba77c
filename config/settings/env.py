"""The one typed view of the environment that every settings module reads.

Defaults give the embedded set-up (SQLite and a redis-server under `var/`, keys generated once into
`var/`); production sets MOSAIC_PRODUCTION=true and must then provide its secrets explicitly.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]


class SettingError(ImproperlyConfigured):
    """A variable with a value Mosaic does not know: refused at start-up, naming the variable
    and what it accepts, instead of silently behaving like some default."""


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class _Reader:
    """Typed, validated reads of one environment mapping."""

    def __init__(self, environ_: Mapping[str, str]) -> None:
        self.environ = environ_

    def text(self, name: str, default: str) -> str:
        return self.environ.get(name, default)

    def choice(self, name: str, allowed: tuple[str, ...], default: str, *, upper=False) -> str:
        raw = self.environ.get(name, default).strip()
        value = raw.upper() if upper else raw
        if value not in allowed:
            raise SettingError(
                f"{name}={raw!r} is not allowed; allowed values: {', '.join(allowed)}"
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.environ.get(name)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise SettingError(
            f"{name}={raw!r} is not a boolean; allowed values: {', '.join(_TRUE + _FALSE)}"
        )

    def _number(self, name: str, default, kind, minimum, maximum):
        raw = self.environ.get(name)
        if raw is None:
            return default
        try:
            value = kind(raw.strip())
        except ValueError:
            raise SettingError(
                f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}; "
                f"allowed values: {minimum} to {maximum}"
            ) from None
        if not minimum <= value <= maximum:  # NaN fails this too
            raise SettingError(
                f"{name}={raw!r} is out of range; allowed values: {minimum} to {maximum}"
            )
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        return self._number(name, default, int, minimum, maximum)

    def number(self, name: str, default: float, minimum: float, maximum: float) -> float:
        return self._number(name, default, float, minimum, maximum)

    def items(self, name: str, default: list[str]) -> list[str]:
        raw = self.environ.get(name)
        if raw is None:
            return default
        return [item.strip() for item in raw.split(",") if item.strip()]


def _redis_cluster(reader: _Reader, redis_url: str) -> bool:
    """MOSAIC_REDIS_CLUSTER: REDIS_URL is then a seed node of a Redis Cluster (database 0, the
    only one a cluster has). Celery's broker (kombu) cannot use a cluster, so CELERY_BROKER_URL
    must then name a Redis of its own, given explicitly (docs/redis.md)."""
    cluster = reader.boolean("MOSAIC_REDIS_CLUSTER", default=False)
    if not cluster:
        return False
    parts = urlsplit(redis_url)
    if parts.scheme not in ("redis", "rediss") or parts.path.strip("/") not in ("", "0"):
        raise SettingError(
            "REDIS_URL must be redis[s]://[user:password@]host:port[/0] (one node of the "
            "cluster, database 0) when MOSAIC_REDIS_CLUSTER=true"
        )
    broker = reader.environ.get("CELERY_BROKER_URL", "").strip()
    if not broker or broker == redis_url:
        raise SettingError(
            "CELERY_BROKER_URL must name a Redis server that is not the cluster when "
            "MOSAIC_REDIS_CLUSTER=true (Celery's Redis broker does not support Redis Cluster); "
            "allowed values: redis[s]://host:port/db of a single server"
        )
    return True


def _generated_secret(path: Path) -> str:
    """A key kept in `var/` so the embedded set-up survives restarts without configuration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _sentry_dsn(dsn: str) -> str:
    """A Sentry DSN (scheme, public key, host, project id) or empty; the refusal does not echo
    the value (it holds the project's key)."""
    if not dsn:
        return dsn
    parts = urlsplit(dsn)
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        parts = parts._replace(netloc="")
    project = parts.path.rstrip("/").rpartition("/")[2]
    if (
        parts.scheme not in ("http", "https")
        or not parts.username
        or not parts.hostname
        or not project.isdigit()
    ):
        raise SettingError(
            "MOSAIC_SENTRY_DSN is not a Sentry DSN; allowed values: empty (error reporting off) "
            "or http(s)://<public key>@<host>[:port]/<project id>"
        )
    return dsn


CONSENT_DEFAULTS = ("opt-out", "opt-in")
UNDECLARED_TRAITS = ("accept", "reject")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "plain")


@dataclass(frozen=True, slots=True)
class MosaicEnv:
    production: bool
    debug: bool
    var_dir: Path
    secret_key: str
    pseudonymization_key: str
    database_url: str
    redis_url: str
    embedded_redis_port: int
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    cors_allowed_origins: list[str]
    log_level: str
    log_format: str
    celery_broker_url: str
    celery_task_always_eager: bool
    segment_recompute_minutes: int
    event_batch_size: int
    ingest_lock_seconds: int
    aggregate_batch_size: int
    ingest_lanes: int
    aggregate_yield_seconds: float
    render_budget_ms: float
    event_max_batch: int
    consent_default: str
    event_retention_days: int
    require_api_key: bool
    identify_secret: str
    undeclared_traits: str
    profile_cache_size: int
    profile_cache_max_age: float
    metrics_allowed_networks: list[str]
    client_rate_limit_per_minute: int
    time_due_seconds: float
    # Segment runs, RFM, guardrails, static lists and webhooks (issue #15).
    segment_run_batch: int
    segment_run_yield_seconds: float
    segment_run_lease_seconds: int
    rfm_window_days: int
    rfm_recompute_minutes: int
    segment_min_size: int
    placement_max_segments: int
    static_list_max_ids: int
    webhook_timeout_seconds: float
    webhook_max_attempts: int
    webhook_backoff_seconds: float
    webhook_allow_loopback: bool
    # Recommendations (issue #17): the beat period, the tuning budget and implicit's threads.
    recs_train_minutes: int
    recs_tuning_seconds: float
    recs_threads: int
    # Optional error reporting (core/error_reporting.py): off when empty.
    sentry_dsn: str
    # REDIS_URL names one node of a Redis Cluster (docs/redis.md); the broker is then apart.
    redis_cluster: bool

    @classmethod
    def load(cls, environ_: Mapping[str, str] | None = None) -> MosaicEnv:
        """Read and validate the environment (os.environ unless given); SettingError names the
        first variable with a value outside its allowed ones."""
        _reader = _Reader(os.environ if environ_ is None else environ_)
        production = _reader.boolean("MOSAIC_PRODUCTION", default=False)
        var_dir = Path(_reader.text("MOSAIC_VAR_DIR", default=str(BASE_DIR / "var")))
        port = _reader.integer("MOSAIC_EMBEDDED_REDIS_PORT", 6399, 1, 65535)

        def secret(name: str) -> str:
            value = _reader.text(name, default="")
            if value:
                return value
            if production:
                raise ImproperlyConfigured(f"{name} must be set when MOSAIC_PRODUCTION=true")
            return _generated_secret(var_dir / name.lower())

        redis_url = _reader.text("REDIS_URL", default=f"redis://127.0.0.1:{port}/0")
        return cls(
            production=production,
            debug=_reader.boolean("DEBUG", default=False),
            var_dir=var_dir,
            secret_key=secret("SECRET_KEY"),
            pseudonymization_key=secret("PSEUDONYMIZATION_KEY"),
            database_url=_reader.text(
                "DATABASE_URL", default=f"sqlite:///{var_dir / 'mosaic.sqlite3'}"
            ),
            redis_url=redis_url,
            embedded_redis_port=port,
            allowed_hosts=_reader.items("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"]),
            csrf_trusted_origins=_reader.items("CSRF_TRUSTED_ORIGINS", default=[]),
            cors_allowed_origins=_reader.items("CORS_ALLOWED_ORIGINS", default=[]),
            log_level=_reader.choice("LOG_LEVEL", LOG_LEVELS, "INFO", upper=True),
            log_format=_reader.choice("MOSAIC_LOG_FORMAT", LOG_FORMATS, "json"),
            celery_broker_url=_reader.text("CELERY_BROKER_URL", default=redis_url),
            celery_task_always_eager=_reader.boolean("CELERY_TASK_ALWAYS_EAGER", default=False),
            segment_recompute_minutes=_reader.integer("SEGMENT_RECOMPUTE_MINUTES", 5, 1, 1440),
            event_batch_size=_reader.integer("EVENT_BATCH_SIZE", 5000, 1, 1_000_000),
            aggregate_batch_size=_reader.integer(
                "MOSAIC_AGGREGATE_BATCH_SIZE", 50000, 1, 10_000_000
            ),
            ingest_lanes=_reader.integer("MOSAIC_INGEST_LANES", 2, 1, 64),
            aggregate_yield_seconds=_reader.number("MOSAIC_AGGREGATE_YIELD_SECONDS", 3.0, 0, 600),
            ingest_lock_seconds=_reader.integer("MOSAIC_INGEST_LOCK_SECONDS", 60, 1, 86_400),
            render_budget_ms=_reader.number("MOSAIC_RENDER_BUDGET_MS", 50.0, 0.1, 60_000),
            event_max_batch=_reader.integer("EVENT_MAX_BATCH", 500, 1, 10_000),
            consent_default=_reader.choice("MOSAIC_CONSENT_DEFAULT", CONSENT_DEFAULTS, "opt-out"),
            event_retention_days=_reader.integer("MOSAIC_EVENT_RETENTION_DAYS", 395, 1, 36_500),
            # Required in production unless explicitly set to false there.
            require_api_key=_reader.boolean("MOSAIC_REQUIRE_API_KEY", default=production),
            # Optional in production: unset there means browser-side identify is refused.
            identify_secret=(
                _reader.text("MOSAIC_IDENTIFY_SECRET", default="")
                if production
                else secret("MOSAIC_IDENTIFY_SECRET")
            ),
            undeclared_traits=_reader.choice(
                "MOSAIC_UNDECLARED_TRAITS", UNDECLARED_TRAITS, "accept"
            ),
            profile_cache_size=_reader.integer("MOSAIC_PROFILE_CACHE_SIZE", 10_000, 0, 10_000_000),
            profile_cache_max_age=_reader.number(
                "MOSAIC_PROFILE_CACHE_MAX_AGE", 60.0, 0.001, 86_400
            ),
            time_due_seconds=_reader.number("MOSAIC_TIME_DUE_SECONDS", 15.0, 1.0, 86_400),
            client_rate_limit_per_minute=_reader.integer(
                "MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE", 120, 0, 1_000_000
            ),
            metrics_allowed_networks=_reader.items(
                "MOSAIC_METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"]
            ),
            segment_run_batch=_reader.integer("MOSAIC_SEGMENT_RUN_BATCH", 2000, 1, 1_000_000),
            segment_run_yield_seconds=_reader.number(
                "MOSAIC_SEGMENT_RUN_YIELD_SECONDS", 0.0, 0, 60
            ),
            segment_run_lease_seconds=_reader.integer(
                "MOSAIC_SEGMENT_RUN_LEASE_SECONDS", 120, 1, 86_400
            ),
            rfm_window_days=_reader.integer("MOSAIC_RFM_WINDOW_DAYS", 365, 1, 36_500),
            rfm_recompute_minutes=_reader.integer("MOSAIC_RFM_RECOMPUTE_MINUTES", 60, 1, 43_200),
            segment_min_size=_reader.integer("MOSAIC_SEGMENT_MIN_SIZE", 100, 0, 1_000_000_000),
            placement_max_segments=_reader.integer("MOSAIC_PLACEMENT_MAX_SEGMENTS", 15, 1, 10_000),
            # Bounds an upload's memory: each id may be 200 characters (segments/api).
            static_list_max_ids=_reader.integer(
                "MOSAIC_STATIC_LIST_MAX_IDS", 1_000_000, 1, 10_000_000
            ),
            webhook_timeout_seconds=_reader.number("MOSAIC_WEBHOOK_TIMEOUT_SECONDS", 5.0, 0.1, 300),
            webhook_max_attempts=_reader.integer("MOSAIC_WEBHOOK_MAX_ATTEMPTS", 6, 1, 100),
            webhook_backoff_seconds=_reader.number("MOSAIC_WEBHOOK_BACKOFF_SECONDS", 2.0, 0, 3600),
            # Loopback and private targets: the demo's echo receiver; refused in production.
            webhook_allow_loopback=_reader.boolean(
                "MOSAIC_WEBHOOK_ALLOW_LOOPBACK", default=not production
            ),
            recs_train_minutes=_reader.integer("MOSAIC_RECS_TRAIN_MINUTES", 360, 1, 43_200),
            recs_tuning_seconds=_reader.number("MOSAIC_RECS_TUNING_SECONDS", 60.0, 0, 86_400),
            # 0: one thread per CPU (recommendations.engine.models.default_threads).
            recs_threads=_reader.integer("MOSAIC_RECS_THREADS", 0, 0, 1024),
            sentry_dsn=_sentry_dsn(_reader.text("MOSAIC_SENTRY_DSN", default="").strip()),
            redis_cluster=_redis_cluster(_reader, redis_url),
        )


ENV = MosaicEnv.load()
