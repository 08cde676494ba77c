"""One shared Redis client per process and URL, with short timeouts for the hot path.

Callers treat `redis.RedisError` as "Redis is unavailable" and fall back visibly.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()

KEY_PREFIX = "mosaic:"


def get_redis() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = redis.Redis.from_url(
                    url,
                    socket_connect_timeout=0.25,
                    socket_timeout=0.5,
                    health_check_interval=30,
                )
                _clients[url] = client
    return client


def key(*parts: str) -> str:
    return KEY_PREFIX + ":".join(parts)
