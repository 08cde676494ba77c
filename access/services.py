"""Writes for API keys (create, revoke, last use) and the per-key rate-limit counter."""

from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from core.pseudonym import pseudonymize
from core.redis import get_redis, key
from profiles.audit import audit_record
from profiles.models import AuditAction

from . import selectors
from .keys import key_digest, key_generate, key_prefix, origin_normalize
from .models import ApiKey, ApiKeyKind
from .ratelimit import SharedCounters

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


def rate_limit_hit(
    *, api_key: ApiKey, client: str | None = None, origin_allowed: bool = False
) -> RateDecision:
    """Count one request in fixed one-minute windows, shared by all processes through Redis and
    counted locally in batches (access.ratelimit: most calls make no Redis command; the bound
    on what is admitted is there). Fails open when Redis is unavailable (the endpoints have
    their own answer for a dead Redis, and refusing every request because the counter is
    unreachable would be worse than no limit).

    A secret key (a server) has one budget, the key's. A publishable key is public: counting
    every caller against the key would let anyone spend the site's budget (issue #13, item 7).
    So, per publishable key:
    - calls without an allowed Origin (no browser on the site sends those) count against the
      calling client only (`client`, its address), MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE;
    - calls with an allowed Origin count against the key's budget, but each client may use at
      most a tenth of it (at least the per-client limit): an Origin header can be forged by a
      non-browser caller, and one such caller must not exhaust the site's budget. A client over
      its own limit is refused without spending the key's budget.
    """
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    key_limit = api_key.rate_limit_per_minute
    # The key's id as a hash tag ({7}): the script counts a client and its key together, so on a
    # Redis Cluster both counters must be on one slot.
    tag = f"{{{api_key.pk}}}"
    if api_key.is_secret or client is None:
        keys = [key("ratelimit", tag, str(window))]
        limits = [key_limit]
    else:
        client_limit = settings.MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE
        if origin_allowed:
            client_limit = max(client_limit, key_limit // 10)
        # The address only as its keyed hash: nothing in Redis (nor its AOF) names a client.
        bucket = _client_bucket(client, settings.PSEUDONYMIZATION_KEY)
        keys = [key("ratelimit", tag, "client", bucket, str(window))]
        limits = [client_limit]
        if origin_allowed:
            keys.append(key("ratelimit", tag, str(window)))
            limits.append(key_limit)
    outcome = _counters.hit(keys, limits, window=window, ttl=WINDOW_SECONDS + 5)
    limit = limits[outcome.index]
    if not outcome.allowed:
        return RateDecision(False, outcome.count, limit, retry_after)
    return RateDecision(True, outcome.count, limit, retry_after)


# This process's share of the counters (one per process: each web worker counts its own calls).
_counters = SharedCounters(get_redis)


def rate_limits_reset() -> None:
    """Forget this process's counts (tests: a new Redis, the same key ids)."""
    _counters.reset()


# A client calls many times a minute: its bucket (an HMAC) and its address's parsed form are
# remembered per process, bounded (the address is the caller's), rather than recomputed per call
# (a few µs each of a keyed decide's; docs/benchmarks.md, issue #18). Keyed by the
# pseudonymisation key too, so a rotated key is used at once.
@functools.lru_cache(maxsize=4096)
def _client_bucket(client: str, pseudonymization_key: str) -> str:
    return pseudonymize(client)[:24]


def client_address(request) -> str:
    """The caller's address as a rate-limit bucket: an IPv6 address by its /64 (one host
    usually holds a whole /64), IPv4 as it is. REMOTE_ADDR: behind a proxy, the proxy must
    set it (e.g. gunicorn's forwarded-allow-ips)."""
    return _address_bucket(request.META.get("REMOTE_ADDR", "") or "unknown")


@functools.lru_cache(maxsize=4096)
def _address_bucket(raw: str) -> str:
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)
