"""Database: DATABASE_URL (PostgreSQL in production), SQLite under var/ by default."""

import environ

from .env import ENV

_db = environ.Env.db_url_config(ENV.database_url)

if _db["ENGINE"] == "django.db.backends.sqlite3":
    ENV.var_dir.mkdir(parents=True, exist_ok=True)
    # WAL and IMMEDIATE transactions let the web process and the Celery worker write to one
    # file without "database is locked" errors under normal load.
    _db["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not :memory:) so that a real Celery worker started by the tests sees the test data.
    _db["TEST"] = {"NAME": str(ENV.var_dir / "test_mosaic.sqlite3")}
else:
    _db.setdefault("CONN_MAX_AGE", 60)
    _db["CONN_HEALTH_CHECKS"] = True

DATABASES = {"default": _db}
