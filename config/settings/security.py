"""Security: production hardening (MOSAIC_PRODUCTION=true), CSRF and CORS origins, admin login
throttling (django-axes) and password rules, who may read /metrics."""

from datetime import timedelta

from corsheaders.defaults import default_methods

from .env import ENV

CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins
CORS_ALLOWED_ORIGINS = ENV.cors_allowed_origins
CORS_URLS_REGEX = r"^/api/.*$"
# django-cors-headers reads its settings on every /api/ call, each through Django's lazy settings
# and with its legacy name evaluated as getattr's default: an undefined one raises and catches an
# AttributeError per read (measured in docs/benchmarks.md, issue #18). Its
# defaults, spelled out, legacy names included (ignored while the new names are defined).
CORS_ALLOW_ALL_ORIGINS = CORS_ORIGIN_ALLOW_ALL = False
CORS_ORIGIN_WHITELIST = CORS_ALLOWED_ORIGINS
CORS_ALLOWED_ORIGIN_REGEXES: tuple[str, ...] = ()
CORS_ORIGIN_REGEX_WHITELIST = CORS_ALLOWED_ORIGIN_REGEXES
CORS_EXPOSE_HEADERS: tuple[str, ...] = ()
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_PRIVATE_NETWORK = False
CORS_PREFLIGHT_MAX_AGE = 86400
CORS_ALLOW_METHODS = default_methods

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

if ENV.production:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Admin sign-in: django-axes locks a username from an address out after 5 failures for 15
# minutes (counted in the database; `manage.py axes_reset` lifts a lockout), and passwords follow
# Django's validators.
AUTHENTICATION_BACKENDS = [
    "access.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# /metrics: staff signed in, a secret API key, or a client address in these networks (CIDR;
# the Prometheus scraper's). Loopback by default; behind a proxy REMOTE_ADDR is the proxy's.
MOSAIC_METRICS_ALLOWED_NETWORKS = ENV.metrics_allowed_networks
