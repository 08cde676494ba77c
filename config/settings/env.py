"""The one typed view of the environment that every settings module reads.

Defaults give the embedded set-up (SQLite and a redis-server under `var/`, keys generated once into
`var/`); production sets MOSAIC_PRODUCTION=true and must then provide its secrets explicitly.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parents[2]

_reader = environ.Env()


def _generated_secret(path: Path) -> str:
    """A key kept in `var/` so the embedded set-up survives restarts without configuration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


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

    @classmethod
    def load(cls) -> MosaicEnv:
        production = _reader.bool("MOSAIC_PRODUCTION", default=False)
        var_dir = Path(_reader.str("MOSAIC_VAR_DIR", default=str(BASE_DIR / "var")))
        port = _reader.int("MOSAIC_EMBEDDED_REDIS_PORT", default=6399)

        def secret(name: str) -> str:
            value = _reader.str(name, default="")
            if value:
                return value
            if production:
                raise environ.ImproperlyConfigured(
                    f"{name} must be set when MOSAIC_PRODUCTION=true"
                )
            return _generated_secret(var_dir / name.lower())

        redis_url = _reader.str("REDIS_URL", default=f"redis://127.0.0.1:{port}/0")
        return cls(
            production=production,
            debug=_reader.bool("DEBUG", default=False),
            var_dir=var_dir,
            secret_key=secret("SECRET_KEY"),
            pseudonymization_key=secret("PSEUDONYMIZATION_KEY"),
            database_url=_reader.str(
                "DATABASE_URL", default=f"sqlite:///{var_dir / 'mosaic.sqlite3'}"
            ),
            redis_url=redis_url,
            embedded_redis_port=port,
            allowed_hosts=_reader.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"]),
            csrf_trusted_origins=_reader.list("CSRF_TRUSTED_ORIGINS", default=[]),
            cors_allowed_origins=_reader.list("CORS_ALLOWED_ORIGINS", default=[]),
            log_level=_reader.str("LOG_LEVEL", default="INFO"),
            celery_broker_url=_reader.str("CELERY_BROKER_URL", default=redis_url),
            celery_task_always_eager=_reader.bool("CELERY_TASK_ALWAYS_EAGER", default=False),
            segment_recompute_minutes=_reader.int("SEGMENT_RECOMPUTE_MINUTES", default=5),
            event_batch_size=_reader.int("EVENT_BATCH_SIZE", default=5000),
            aggregate_batch_size=_reader.int("MOSAIC_AGGREGATE_BATCH_SIZE", default=50000),
            ingest_lanes=max(1, _reader.int("MOSAIC_INGEST_LANES", default=2)),
            aggregate_yield_seconds=_reader.float("MOSAIC_AGGREGATE_YIELD_SECONDS", default=3.0),
            ingest_lock_seconds=_reader.int("MOSAIC_INGEST_LOCK_SECONDS", default=60),
            render_budget_ms=_reader.float("MOSAIC_RENDER_BUDGET_MS", default=50.0),
            event_max_batch=_reader.int("EVENT_MAX_BATCH", default=500),
            consent_default=_reader.str("MOSAIC_CONSENT_DEFAULT", default="opt-out"),
            event_retention_days=_reader.int("MOSAIC_EVENT_RETENTION_DAYS", default=395),
            # Required in production unless explicitly set to false there.
            require_api_key=_reader.bool("MOSAIC_REQUIRE_API_KEY", default=production),
            # Optional in production: unset there means browser-side identify is refused.
            identify_secret=(
                _reader.str("MOSAIC_IDENTIFY_SECRET", default="")
                if production
                else secret("MOSAIC_IDENTIFY_SECRET")
            ),
            undeclared_traits=_reader.str("MOSAIC_UNDECLARED_TRAITS", default="accept"),
            profile_cache_size=_reader.int("MOSAIC_PROFILE_CACHE_SIZE", default=10_000),
            profile_cache_max_age=_reader.float("MOSAIC_PROFILE_CACHE_MAX_AGE", default=60.0),
            client_rate_limit_per_minute=_reader.int(
                "MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE", default=120
            ),
            metrics_allowed_networks=_reader.list(
                "MOSAIC_METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"]
            ),
        )


ENV = MosaicEnv.load()
