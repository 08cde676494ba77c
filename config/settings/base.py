"""Core Django settings: apps, middleware, templates, static files, logging, REST framework."""

from corsheaders.defaults import default_headers

from core import metrics_dir
from core.error_reporting import error_reporting_start

from .env import BASE_DIR, ENV

SECRET_KEY = ENV.secret_key
DEBUG = ENV.debug
ALLOWED_HOSTS = ENV.allowed_hosts
MOSAIC_VAR_DIR = ENV.var_dir
# Prometheus multiprocess files: this process group's directory under var/prometheus
# (core/metrics_dir.py); the web process (config/web.py) claims it before granian starts its
# workers, else the first process here.
MOSAIC_METRICS_DIR = metrics_dir.claim(ENV.var_dir / "prometheus")
PSEUDONYMIZATION_KEY = ENV.pseudonymization_key
REDIS_URL = ENV.redis_url
# REDIS_URL is a node of a Redis Cluster (core/redis.py, docs/redis.md).
MOSAIC_REDIS_CLUSTER = ENV.redis_cluster
MOSAIC_EMBEDDED_REDIS_PORT = ENV.embedded_redis_port
MOSAIC_EVENT_BATCH_SIZE = ENV.event_batch_size
# Stage 2 of ingestion: at most this many stored events folded into profiles per transaction.
MOSAIC_AGGREGATE_BATCH_SIZE = ENV.aggregate_batch_size
# How long a stage-2 run waits while stage 1 has a backlog (bounds the aggregates' extra lag).
MOSAIC_AGGREGATE_YIELD_SECONDS = ENV.aggregate_yield_seconds
# Stage-1 runs that may write batches at once (each needs a worker process; lower it only
# once the queue is drained: a lane's leftover batch is retried by that lane only).
MOSAIC_INGEST_LANES = ENV.ingest_lanes
# How long a crashed ingestion run blocks the next one; longer than one batch ever takes.
MOSAIC_INGEST_LOCK_SECONDS = ENV.ingest_lock_seconds
# A variant render slower than this serves the placement's default (logged and counted).
MOSAIC_RENDER_BUDGET_MS = ENV.render_budget_ms
MOSAIC_EVENT_MAX_BATCH = ENV.event_max_batch
# "opt-out": purposes are granted until the visitor refuses; "opt-in": refused until granted.
MOSAIC_CONSENT_DEFAULT = ENV.consent_default
# Events older than this are purged daily (segments.tasks.events_purge_expired).
MOSAIC_EVENT_RETENTION_DAYS = ENV.event_retention_days
# API keys (docs/events.md): false keeps key-less calls working (the embedded demo); true needs one.
MOSAIC_REQUIRE_API_KEY = ENV.require_api_key
MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE = ENV.client_rate_limit_per_minute
# HMAC key with which the site signs user ids for browser-side identify calls.
MOSAIC_IDENTIFY_SECRET = ENV.identify_secret
# Traits without a TraitDefinition: "accept" (stored as sent) or "reject" (400 naming the trait).
MOSAIC_UNDECLARED_TRAITS = ENV.undeclared_traits
# Per-process copy of the profile documents decisions read, invalidated by Redis (CLIENT TRACKING):
# most entries it holds (0 turns it off) and the age after which an entry is re-read regardless.
MOSAIC_PROFILE_CACHE_SIZE = ENV.profile_cache_size
MOSAIC_PROFILE_CACHE_MAX_AGE = ENV.profile_cache_max_age
# Optional error reporting (core/error_reporting.py): nothing is started without a DSN.
if ENV.sentry_dsn:
    error_reporting_start(
        ENV.sentry_dsn, environment="production" if ENV.production else "embedded"
    )
# Browsers send publishable keys in this header too; CORS preflight must let it through.
CORS_ALLOW_HEADERS = (*default_headers, "x-mosaic-key")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "personalization.apps.PersonalizationConfig",
    "segments",
    "content",
    "experiments",
    "access",
    "identity",
    "demo.apps.DemoConfig",
    "axes",
    "analysis",
    "recommendations",
]

# Sessions, users and messages: Django's, stepped over on keyless decide calls
# (personalization/middleware.py). CSRF stays Django's own class: `check --deploy` looks for it.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "personalization.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "personalization.middleware.AuthenticationMiddleware",
    "personalization.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

if ENV.sentry_dsn:
    # Remembers the ids a request carries, so that an error event can redact them.
    MIDDLEWARE.insert(0, "core.error_reporting.RequestIdsRemembered")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Project-wide assets served by Mosaic itself (vendored chart library: no CDN).
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = ENV.var_dir / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on a missing root
# Files written by Mosaic itself (model segments' model files, analysis.ModelFile); never served.
MEDIA_ROOT = ENV.var_dir / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Finders mode (WHITENOISE_USE_FINDERS) serves without collectstatic in the embedded set-up.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "access.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["access.permissions.ApiKeyPolicy"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.FastJSONParser"],
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mosaic API",
    "DESCRIPTION": "Personalized content decisions, behavioural events and privacy endpoints.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Self-hosted UI assets: the docs work without reaching a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": ENV.log_format}},
    "root": {"handlers": ["console"], "level": ENV.log_level},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # django-axes logs a banner on every start and a line on every successful login at INFO;
        # failures and lockouts, what an operator needs, are WARNING.
        "axes": {"level": "WARNING"},
    },
}
