"""Writes for API keys (create, revoke, last use) and the per-key rate-limit counter."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis
from django.utils import timezone

from core.redis import get_redis, key
from segments.models import AuditAction
from segments.privacy import audit_record

from . import selectors
from .keys import key_digest, key_generate, key_prefix, origin_normalize
from .models import ApiKey, ApiKeyKind

logger = logging.getLogger(__name__)

LAST_USED_EVERY_SECONDS = 60
WINDOW_SECONDS = 60

_last_touch: dict[str, float] = {}


def api_key_create(
    *,
    name: str,
    kind: str,
    allowed_origins: list[str] | None = None,
    rate_limit_per_minute: int = 600,
    actor: str = "system",
    role=None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it with the raw key, which is never stored and cannot be recovered."""
    if kind not in ApiKeyKind.values:
        raise ValueError(f"Unknown key kind {kind!r}.")
    raw = key_generate(kind)
    api_key = ApiKey(name=name, kind=kind, rate_limit_per_minute=rate_limit_per_minute, role=role)
    api_key_set_secret(api_key=api_key, raw=raw)
    api_key.allowed_origins = api_key_clean_origins(origins=allowed_origins or [])
    api_key.save()
    selectors.caches_clear()
    api_key_audit(api_key=api_key, change="created", actor=actor)
    return api_key, raw


def api_key_set_secret(*, api_key: ApiKey, raw: str) -> None:
    """Put the digest and prefix of `raw` on an unsaved key (the admin's create path uses it)."""
    api_key.hashed_key = key_digest(raw)
    api_key.prefix = key_prefix(raw)


def api_key_clean_origins(*, origins: list[str]) -> list[str]:
    """Normalised origins; raises ValueError naming an origin that is not scheme://host[:port]."""
    cleaned = []
    for origin in origins:
        normal = origin_normalize(origin)
        if not normal:
            raise ValueError(f"Not an origin (scheme://host[:port]): {origin!r}")
        cleaned.append(normal)
    return sorted(set(cleaned))


def api_key_revoke(*, api_key: ApiKey, actor: str = "system") -> ApiKey:
    if api_key.is_active:
        api_key.is_active = False
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["is_active", "revoked_at"])
        api_key_audit(api_key=api_key, change="revoked", actor=actor)
    selectors.caches_clear()
    return api_key


def api_key_audit(*, api_key: ApiKey, change: str, actor: str) -> None:
    """Append a key change to segments' audit log."""
    # Prefix and kind identify the key; the secret and the key's free-text name stay out.
    audit_record(
        action=AuditAction.KEY_CHANGE,
        actor=actor[:150],
        details={
            "change": change,
            "key": api_key.prefix,
            "kind": api_key.kind,
            "role": api_key.role.name if api_key.role_id else None,
        },
    )


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key and process: a write per request would cost."""
    now = time.monotonic()
    last = _last_touch.get(api_key.hashed_key)
    if last is not None and now - last < LAST_USED_EVERY_SECONDS:
        return
    _last_touch[api_key.hashed_key] = now
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    count: int
    limit: int
    retry_after: int


def rate_limit_hit(*, api_key: ApiKey) -> RateDecision:
    """Count one request in the key's current fixed one-minute window (shared by all processes).

    Fails open when Redis is unavailable: the endpoints have their own answer for a dead Redis,
    and refusing every request because the counter is unreachable would be worse than no limit.
    """
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    counter = key("ratelimit", str(api_key.pk), str(window))
    try:
        pipe = get_redis().pipeline(transaction=True)
        pipe.incr(counter)
        pipe.expire(counter, WINDOW_SECONDS + 5)
        count = int(pipe.execute()[0])
    except redis.RedisError:
        logger.warning("access: Redis unavailable, rate limit not enforced")
        return RateDecision(True, 0, api_key.rate_limit_per_minute, 0)
    limit = api_key.rate_limit_per_minute
    return RateDecision(count <= limit, count, limit, retry_after)
