"""One shared Redis client per process and URL, with short timeouts for the hot path.

Callers treat `redis.RedisError` as "Redis is unavailable" and fall back visibly.

Redis Cluster (MOSAIC_REDIS_CLUSTER=true, docs/redis.md): `get_redis()` returns a
`redis.cluster.RedisCluster`, which offers the same commands and sends each to the node that
holds its key's slot. A command, transaction or Lua script over several keys must find them all
on one slot, or the cluster refuses it (CROSSSLOT): keys used together are named with a common
hash tag (`tagged()`, `mosaic:{events}:queue`), so they land on one slot however many nodes
there are. Keys never used together (profile documents, one per visitor) keep plain names and
spread over the nodes; reads of many of them go through `mget()`, which splits them by slot.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, cast

import redis
from django.conf import settings
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, SlotNotCoveredError

_clients: dict[tuple[str, bool], redis.Redis] = {}
_lock = threading.Lock()

KEY_PREFIX = "mosaic:"

# Short timeouts: a decision must fall back, not wait, when Redis is slow or gone.
CLIENT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 0.25,
    "socket_timeout": 0.5,
    "health_check_interval": 30,
}


class _Cluster(RedisCluster):
    """RedisCluster whose "cluster unreachable" errors are `redis.ConnectionError`.

    redis-py raises `RedisClusterException` (not a `RedisError`) when no node answers, from the
    constructor and from every command, pipeline or script that has to re-read the cluster's
    map, and `SlotNotCoveredError` when its map lacks a slot. Mosaic's callers treat
    `redis.RedisError` as "Redis is unavailable" and fall back (decide serves defaults, events
    answer 503): without this, a dead cluster would be a 500. Other RedisClusterExceptions
    (keys of several slots in one command: a programming error) are left as they are.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except RedisClusterException as exc:
            raise redis.ConnectionError(f"Redis Cluster unreachable: {exc}") from exc
        initialize = self.nodes_manager.initialize

        def initialize_or_connection_error(*a: Any, **kw: Any) -> None:
            try:
                initialize(*a, **kw)
            except RedisClusterException as exc:
                raise redis.ConnectionError(f"Redis Cluster unreachable: {exc}") from exc

        self.nodes_manager.initialize = initialize_or_connection_error  # type: ignore[method-assign]

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)
        except SlotNotCoveredError as exc:
            raise redis.ConnectionError(f"Redis Cluster slot not served: {exc}") from exc
        except RedisClusterException as exc:
            # A command for all primaries (SCAN) while the map is empty: no node is known.
            if str(exc).startswith("No targets were found"):
                raise redis.ConnectionError(f"Redis Cluster unreachable: {exc}") from exc
            raise


def cluster_enabled() -> bool:
    return bool(getattr(settings, "MOSAIC_REDIS_CLUSTER", False))


def get_redis() -> redis.Redis:
    """The process's client for REDIS_URL: a `redis.Redis`, or a `RedisCluster` (typed as the
    former: it has the same command methods) when MOSAIC_REDIS_CLUSTER is on."""
    url, cluster = settings.REDIS_URL, cluster_enabled()
    client = _clients.get((url, cluster))
    if client is None:
        with _lock:
            client = _clients.get((url, cluster))
            if client is None:
                if cluster:
                    client = cast(redis.Redis, _Cluster.from_url(url, **CLIENT_OPTIONS))
                else:
                    client = redis.Redis.from_url(url, **CLIENT_OPTIONS)
                _clients[(url, cluster)] = client
    return client


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def key(*parts: str) -> str:
    return KEY_PREFIX + ":".join(parts)


def tagged(tag: str, *parts: str) -> str:
    """A key on the hash slot of `tag`: every key with the same tag is on one slot, so one
    transaction, MGET or Lua script may use them together on a Redis Cluster. The tag is the
    name's only braces (`mosaic:{events}:queue`): a cluster hashes only what is inside them."""
    if "{" in tag or "}" in tag:
        raise ValueError(f"a hash tag cannot hold braces: {tag!r}")
    return KEY_PREFIX + ":".join((f"{{{tag}}}", *parts))


def mget(client: redis.Redis, keys: Sequence[str]) -> list[bytes | None]:
    """MGET of keys that may be on different slots: one command on a single server; on a
    cluster, one MGET per slot (sent to its node; values in the order of `keys`)."""
    if is_cluster(client):
        return cast(RedisCluster, client).mget_nonatomic(list(keys))
    return cast(list[bytes | None], client.mget(list(keys)))


def primary_clients(client: redis.Redis) -> list[redis.Redis]:
    """A client per primary node for the commands every node must run for itself (AOF
    rewrite, FLUSHDB); the client itself on a single server."""
    if not is_cluster(client):
        return [client]
    cluster = cast(RedisCluster, client)
    return [cluster.get_redis_connection(node) for node in cluster.get_primaries()]
