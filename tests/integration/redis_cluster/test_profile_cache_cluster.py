"""The profile cache on a 3-node Redis Cluster: tracking is per server, so the cache keeps one
invalidation channel (connection and thread) per primary, reads each key over its node's
channel, hears of writes on every node, and reconnects to a node that was restarted."""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from core.redis import get_redis
from personalization.profile_cache import ProfileCache
from segments.selectors import profile_cache_key
from tests.conftest import wait_for


def keys_per_node(r, count: int = 3) -> dict[str, str]:
    """One profile key per primary node, by node name."""
    found: dict[str, str] = {}
    i = 0
    while len(found) < count:
        name = profile_cache_key(f"cache-cluster-{i}")
        found.setdefault(r.get_node_from_key(name).name, name)
        i += 1
    return found


@pytest.fixture
def cluster_cache(on_cluster):
    made: list[ProfileCache] = []

    def make(reconnect_delay: float = 0.05) -> ProfileCache:
        cache = ProfileCache(on_cluster.url, 100, 60.0, reconnect_delay, cluster=True)
        made.append(cache)
        wait_for(
            lambda: len(cache.redirect_ids()) == 3 and all(cache.redirect_ids().values()),
            timeout=10,
            interval=0.01,
            message="not every node's channel subscribed",
        )
        return cache

    yield make
    for cache in made:
        cache.close()


def other_client(nodes) -> RedisCluster:
    """Another process's view: a client of its own, not the one the cache uses."""
    return RedisCluster.from_url(nodes.url)


def test_profile_cache__cluster__each_node_invalidates_its_keys(on_cluster, cluster_cache):
    # Given a cache with one channel per primary, and a key on each node read through it
    cache = cluster_cache()
    writer = other_client(on_cluster)
    keys = keys_per_node(get_redis())
    for name in keys.values():
        writer.set(name, b"v1")
        assert cache.get(name) == b"v1"
    hits = cache.counts["hits"]
    assert [cache.get(name) for name in keys.values()] == [b"v1"] * 3
    assert cache.counts["hits"] == hits + 3  # served from memory
    # And each node tracks the key for its own invalidation connection
    for node_name, client_id in cache.redirect_ids().items():
        node = writer.get_node(node_name=node_name)
        tracking = [
            c
            for c in writer.get_redis_connection(node).client_list()
            if c["name"] == "mosaic-profile-cache"
        ]
        assert [c["redir"] for c in tracking] == [str(client_id)]
    # When another client writes each key (on three different nodes)
    for name in keys.values():
        writer.set(name, b"v2")
    # Then every node's invalidation reaches the cache, and reads see the writes
    wait_for(lambda: cache.counts["invalidations"] >= 3, timeout=5, interval=0.01)
    assert [cache.get(name) for name in keys.values()] == [b"v2"] * 3


def test_profile_cache__cluster_node_restarted__its_channel_reconnects(on_cluster, cluster_cache):
    # Given a cache holding a key of the second node
    cache = cluster_cache()
    writer = other_client(on_cluster)
    port = on_cluster.ports[1]
    node_name = f"127.0.0.1:{port}"
    name = keys_per_node(get_redis())[node_name]
    writer.set(name, b"before")
    assert cache.get(name) == b"before"
    old_id = cache.redirect_ids()[node_name]
    # When that node's server stops and starts again (same port, its data kept)
    on_cluster.stop(1)
    wait_for(lambda: cache.redirect_ids()[node_name] is None, timeout=5, interval=0.01)
    on_cluster.start(1)
    on_cluster.wait_ok()
    # Then its channel subscribes again (the thread reconnects to the node by itself)
    wait_for(
        lambda: cache.redirect_ids().get(node_name) not in (None, old_id),
        timeout=15,
        interval=0.05,
        message="the restarted node's channel never came back",
    )
    # And the key is cached and invalidated through it as before
    writer = other_client(on_cluster)
    # (the first read after a resubscription opens the new tracking data connection, and is
    # not stored: what the old one tracked is dropped as it closes)
    assert [cache.get(name) for _ in range(2)] == [b"before"] * 2
    hits = cache.counts["hits"]
    assert cache.get(name) == b"before"
    assert cache.counts["hits"] == hits + 1
    invalidations = cache.counts["invalidations"]
    writer.set(name, b"after")
    wait_for(lambda: cache.counts["invalidations"] > invalidations, timeout=5, interval=0.01)
    assert cache.get(name) == b"after"
