"""The per-process profile cache against the real redis-server: hits skip Redis, every kind of
change invalidates, a read racing a write is not stored, a lost channel empties and bypasses."""

from __future__ import annotations

import json
import os
import time

import pytest
import redis

from core import metrics
from core.pseudonym import pseudonymize
from personalization import profile_cache
from personalization.profile_cache import ProfileCache
from segments import services
from segments.models import Profile
from segments.selectors import profile_cache_key
from tests.conftest import wait_for
from tests.factories import make_placement, make_variant

KEY = profile_cache_key("cache-test-visitor")


def gets_served(r: redis.Redis) -> int:
    """GET commands the server has executed since the last CONFIG RESETSTAT."""
    return r.info("commandstats").get("cmdstat_get", {}).get("calls", 0)


def data_connection(r: redis.Redis, cache: ProfileCache) -> dict:
    """The server's CLIENT LIST entry of the cache's data connection (tracking for its id)."""
    found = [
        c
        for c in r.client_list()
        if c["name"] == "mosaic-profile-cache" and c["redir"] == str(cache.redirect_id)
    ]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def make_cache(redis_url):
    """A dedicated cache (not the process's), subscribed and ready, closed after the test."""
    made: list[ProfileCache] = []

    def make(max_entries: int = 100, max_age: float = 60.0, reconnect_delay: float = 0.05):
        cache = ProfileCache(redis_url, max_entries, max_age, reconnect_delay)
        made.append(cache)
        wait_for(lambda: cache.redirect_id, timeout=5, interval=0.01, message="never subscribed")
        return cache

    yield make
    for cache in made:
        cache.close()


def wait_invalidated(cache: ProfileCache, at_least: int) -> None:
    wait_for(
        lambda: cache.counts["invalidations"] >= at_least,
        timeout=5,
        interval=0.01,
        message="no invalidation arrived",
    )


def test_profile_cache__second_read__no_round_trip(make_cache, redis_client):
    # Given a cache that has read a key once
    cache = make_cache()
    redis_client.set(KEY, b'{"traits": {}}')
    assert cache.get(KEY) == b'{"traits": {}}'
    redis_client.config_resetstat()
    # When the key is read again
    value = cache.get(KEY)
    # Then the value comes from memory: the server executed no GET
    assert value == b'{"traits": {}}'
    assert gets_served(redis_client) == 0
    assert cache.counts["hits"] == 1
    assert cache.counts["misses"] == 1


def test_profile_cache__write_elsewhere__invalidates(make_cache, redis_client):
    # Given a cached key
    cache = make_cache()
    redis_client.set(KEY, b"old")
    assert cache.get(KEY) == b"old"
    # When another client overwrites it
    redis_client.set(KEY, b"new")
    # Then the server's invalidation evicts it, and the next read fetches the new value
    wait_invalidated(cache, 1)
    assert cache.get(KEY) == b"new"
    assert cache.counts["misses"] == 2


@pytest.mark.django_db
def test_profile_cache__profile_cache_write__invalidates(make_cache, redis_client):
    # Given a visitor whose profile document a cache holds
    services.profile_set_traits(visitor="ann", traits={"tier": "silver"})
    key = profile_cache_key(pseudonymize("ann"))
    cache = make_cache()
    assert json.loads(cache.get(key))["traits"] == {"tier": "silver"}
    # When Mosaic rewrites the document (as ingestion and trait updates do)
    profile = Profile.objects.get(key=pseudonymize("ann"))
    profile.traits = {"tier": "gold"}
    profile.save()
    services.profile_cache_write(profile_ids=[profile.pk])
    # Then the cache drops it and reads the new document
    wait_invalidated(cache, 1)
    assert json.loads(cache.get(key))["traits"] == {"tier": "gold"}


def test_profile_cache__missing_key__cached_until_created(make_cache, redis_client):
    # Given a cache that read a key which does not exist (a new visitor)
    cache = make_cache()
    assert cache.get(KEY) is None
    redis_client.config_resetstat()
    assert cache.get(KEY) is None
    assert gets_served(redis_client) == 0  # the miss itself is cached
    # When the key is created by another client
    redis_client.set(KEY, b"created")
    # Then the server tracked the missing key too: it invalidates, and the value is read
    wait_invalidated(cache, 1)
    assert cache.get(KEY) == b"created"


@pytest.mark.django_db
def test_profile_cache__erasure__invalidates(make_cache, admin_client, redis_client):
    # Given an erasable visitor whose profile document a cache holds
    services.profile_set_traits(visitor="eve", traits={"tier": "gold"})
    key = profile_cache_key(pseudonymize("eve"))
    cache = make_cache()
    assert cache.get(key) is not None
    # When the visitor is erased
    assert admin_client.delete("/api/v1/profiles/eve").json()["erased"] is True
    # Then the cache no longer serves the document
    wait_invalidated(cache, 1)
    assert cache.get(key) is None


def test_profile_cache__flushdb__drops_everything(make_cache, redis_client):
    # Given two cached keys
    cache = make_cache()
    redis_client.set(KEY, b"a")
    redis_client.set(KEY + "2", b"b")
    cache.get(KEY), cache.get(KEY + "2")
    flushes = cache.counts["flushes"]
    # When the database is flushed (the invalidation message carries no key: nil)
    redis_client.flushdb()
    # Then the whole cache is dropped
    wait_for(lambda: cache.counts["flushes"] > flushes, timeout=5, interval=0.01)
    assert cache.get(KEY) is None
    assert cache.get(KEY + "2") is None


def test_profile_cache__invalidated_in_flight__not_stored(make_cache, redis_client, monkeypatch):
    # Given a read whose reply is in flight when another client writes the key (and the
    # invalidation has been handled before the reply is stored)
    cache = make_cache()
    redis_client.set(KEY, b"old")
    read = cache._tracked_get

    def read_then_write(channel, key, redirect):
        value = read(channel, key, redirect)
        redis_client.set(KEY, b"new")
        wait_invalidated(cache, 1)
        return value

    monkeypatch.setattr(cache, "_tracked_get", read_then_write)
    # When the read completes
    assert cache.get(KEY) == b"old"  # read before the write: a correct answer for that moment
    monkeypatch.undo()
    # Then it was not stored: the next read goes to Redis and sees the write
    redis_client.config_resetstat()
    assert cache.get(KEY) == b"new"
    assert gets_served(redis_client) == 1


def test_profile_cache__flushed_in_flight__not_stored(make_cache, redis_client, monkeypatch):
    # Given a read in flight when the database is flushed (an invalidation naming no key)
    cache = make_cache()
    redis_client.set(KEY, b"v")
    read = cache._tracked_get
    flushes = cache.counts["flushes"]

    def read_then_flush(channel, key, redirect):
        value = read(channel, key, redirect)
        redis_client.flushdb()
        wait_for(lambda: cache.counts["flushes"] > flushes, timeout=5, interval=0.01)
        return value

    monkeypatch.setattr(cache, "_tracked_get", read_then_flush)
    assert cache.get(KEY) == b"v"
    monkeypatch.undo()
    # When the key is read again
    # Then the value from before the flush was not kept
    assert cache.get(KEY) is None


def test_profile_cache__channel_lost_in_flight__not_stored(make_cache, redis_client, monkeypatch):
    # Given a read in flight when the invalidation connection is killed
    cache = make_cache(reconnect_delay=0.5)
    redis_client.set(KEY, b"v")
    read = cache._tracked_get
    old_id = cache.redirect_id

    def read_then_lose_channel(channel, key, redirect):
        value = read(channel, key, redirect)
        redis_client.client_kill_filter(_id=old_id)
        wait_for(lambda: cache.redirect_id is None, timeout=5, interval=0.01)
        return value

    monkeypatch.setattr(cache, "_tracked_get", read_then_lose_channel)
    assert cache.get(KEY) == b"v"
    monkeypatch.undo()
    # When the key changes before the channel is back
    redis_client.set(KEY, b"v2")
    # Then the value read under the lost channel was not kept: reads see the change, before
    # and after the channel is back
    assert cache.get(KEY) == b"v2"
    wait_for(lambda: cache.redirect_id not in (None, old_id), timeout=5, interval=0.01)
    redis_client.config_resetstat()
    assert cache.get(KEY) == b"v2"
    assert gets_served(redis_client) == 1


def test_profile_cache__invalidation_connection_killed__flushes_bypasses_recovers(
    make_cache, redis_client
):
    # Given a cache holding a key, reconnecting slowly enough to observe the gap
    cache = make_cache(reconnect_delay=1.0)
    redis_client.set(KEY, b"before")
    assert cache.get(KEY) == b"before"
    old_id = cache.redirect_id
    # When its invalidation connection is killed
    redis_client.client_kill_filter(_id=old_id)
    wait_for(lambda: cache.redirect_id is None, timeout=5, interval=0.01)
    # Then nothing is served from memory: reads bypass to Redis (and see writes at once)
    redis_client.set(KEY, b"during")
    bypassed = cache.counts["bypassed"]
    assert cache.get(KEY) == b"during"
    assert cache.counts["bypassed"] == bypassed + 1
    # And once it has resubscribed, a fresh data connection tracks for the new id
    wait_for(lambda: cache.redirect_id not in (None, old_id), timeout=5, interval=0.01)
    assert cache.get(KEY) == b"during"
    assert data_connection(redis_client, cache)["flags"] == "t"  # tracking on
    redis_client.set(KEY, b"after")
    wait_invalidated(cache, 1)
    assert cache.get(KEY) == b"after"


def test_profile_cache__data_connection_killed__flushes_and_reads_directly(
    make_cache, redis_client, monkeypatch
):
    # Given a cached key and a data connection that then dies (its tracking dies with it)
    monkeypatch.setattr(profile_cache, "DATA_RETRY_SECONDS", 0.2)
    cache = make_cache()
    redis_client.set(KEY, b"v1")
    assert cache.get(KEY) == b"v1"
    redis_client.client_kill_filter(_id=data_connection(redis_client, cache)["id"])
    flushes = cache.counts["flushes"]
    # When the next miss uses it
    redis_client.set(KEY + "3", b"x")
    value = cache.get(KEY + "3")
    # Then the answer still comes from Redis, and nothing read before is served any more
    assert value == b"x"
    assert cache.counts["flushes"] == flushes + 1
    redis_client.set(KEY, b"v2")  # no connection tracks KEY now: only the flush protects it
    assert cache.get(KEY) == b"v2"
    # And after a short pause a new data connection tracks again
    time.sleep(0.25)
    assert cache.get(KEY) == b"v2"
    assert data_connection(redis_client, cache)["flags"] == "t"
    redis_client.set(KEY, b"v3")
    wait_invalidated(cache, 1)
    assert cache.get(KEY) == b"v3"


def test_profile_cache__redis_down__raises_redis_error(settings):
    # Given a process whose Redis is unreachable
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    # When the decision path reads a profile
    # Then it fails as a plain GET does (visitor_load turns that into "unavailable")
    with pytest.raises(redis.RedisError):
        profile_cache.profile_raw(KEY)


def test_profile_cache__over_size__least_recently_used_evicted(make_cache, redis_client):
    # Given a cache of three entries, full, whose oldest entry was just used
    cache = make_cache(max_entries=3)
    for name in "abc":
        redis_client.set(KEY + name, name)
        cache.get(KEY + name)
    cache.get(KEY + "a")
    # When a fourth key is read
    redis_client.set(KEY + "d", "d")
    cache.get(KEY + "d")
    # Then the least recently used one (b) was evicted and the others are still hits
    redis_client.config_resetstat()
    for name in "acd":
        cache.get(KEY + name)
    assert gets_served(redis_client) == 0
    cache.get(KEY + "b")
    assert gets_served(redis_client) == 1


def test_profile_cache__older_than_max_age__read_again(make_cache, redis_client):
    # Given a cache whose entries live 0.2 s
    cache = make_cache(max_age=0.2)
    redis_client.set(KEY, b"v")
    cache.get(KEY)
    redis_client.config_resetstat()
    cache.get(KEY)
    assert gets_served(redis_client) == 0
    # When the entry is older than that
    time.sleep(0.25)
    cache.get(KEY)
    # Then it is read from Redis again
    assert gets_served(redis_client) == 1


def test_profile_cache__entries_read_together__expire_spread_out(make_cache, redis_client):
    # Given 100 profiles read at the same moment by a cache whose entries live 3-4 s
    cache = make_cache(max_age=4.0)
    keys = [f"{KEY}-{i}" for i in range(100)]
    for key in keys:
        redis_client.set(key, b"v")
        cache.get(key)
    # When they are read again in the middle of that window (half a second from either edge, so
    # that a stalled test process still lands inside it)
    time.sleep(3.5)
    redis_client.config_resetstat()
    for key in keys:
        cache.get(key)
    # Then some were re-read from Redis and some were still served from the cache: re-reads are
    # spread over the window, not one storm of GETs at max_age
    assert 0 < gets_served(redis_client) < len(keys)


def test_profile_cache__size_zero__disabled(settings, redis_client):
    # Given the cache turned off
    settings.MOSAIC_PROFILE_CACHE_SIZE = 0
    redis_client.set(KEY, b"v")
    # When profiles are read
    assert profile_cache.profile_raw(KEY) == b"v"
    # Then no cache (and no thread) exists: every read is a GET
    assert profile_cache.current() is None
    redis_client.config_resetstat()
    profile_cache.profile_raw(KEY)
    assert gets_served(redis_client) == 1


def test_profile_cache__forget_without_cache__builds_none():
    # Given a process that has not decided anything (the Celery worker)
    profile_cache.reset()
    # When it writes profile documents (they call forget)
    profile_cache.forget([KEY])
    # Then no cache and no invalidation thread were started
    assert profile_cache.current() is None


def test_profile_cache__pid_changed__rebuilt(redis_client, monkeypatch):
    # Given the process's cache, as a forked child would inherit it
    redis_client.set(KEY, b"v")
    profile_cache.profile_raw(KEY)
    inherited = profile_cache.current()
    monkeypatch.setattr(inherited, "pid", inherited.pid - 1)  # "built by the parent"
    # When the child reads
    assert profile_cache.profile_raw(KEY) == b"v"
    # Then it built its own cache rather than serving the parent's entries
    assert profile_cache.current() is not inherited
    assert profile_cache.current().pid == os.getpid()
    inherited.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_profile_cache__forked_child__own_cache_and_channel(redis_client):
    # Given a parent process with a warm cache
    redis_client.set(KEY, b"parent")
    profile_cache.profile_raw(KEY)
    wait_for(lambda: profile_cache.current().redirect_id, timeout=5, interval=0.01)
    assert profile_cache.profile_raw(KEY) == b"parent"
    parent_id = profile_cache.current().redirect_id
    url = profile_cache.current().url
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it sees, then leave without running pytest's teardown
        status = 1
        try:
            inherited = profile_cache.current()
            redis.Redis.from_url(url).set(KEY, b"child")
            value = profile_cache.profile_raw(KEY)
            cache = profile_cache.current()
            ok = inherited is None and value == b"child" and cache.pid == os.getpid()
            deadline = time.monotonic() + 5
            while cache.redirect_id is None and time.monotonic() < deadline:
                time.sleep(0.01)
            ok = ok and cache.redirect_id not in (None, parent_id)
            os.write(write_end, b"ok" if ok else b"bad")
            status = 0
        finally:
            os._exit(status)
    # When the child reads after forking
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    # Then it started without the parent's entries and subscribed on its own connection
    assert os.read(read_end, 16) == b"ok"
    assert status == 0


@pytest.mark.django_db
def test_decide__profile_cache__no_database_query_and_sees_changes(
    client, redis_client, django_assert_num_queries, monkeypatch
):
    # Given a visitor with a profile and a warm decision path
    placement = make_placement("hero")
    make_variant(placement, "gold", condition={"profile.traits.tier": "gold"})
    services.profile_set_traits(visitor="ann", traits={"tier": "silver"})

    def variant():
        body = client.get("/api/v1/decide", {"placements": "hero", "visitor": "ann"}).json()
        assert body["profile"] == "found"
        return body["placements"]["hero"]["variant"]

    assert variant() == "default"
    wait_for(lambda: profile_cache.current().redirect_id, timeout=5, interval=0.01)
    variant()  # now through the tracked connection
    hits = profile_cache.current().counts["hits"]
    # When deciding again
    with django_assert_num_queries(0):
        assert variant() == "default"
    # Then the profile came from the cache, without any database query
    assert profile_cache.current().counts["hits"] == hits + 1
    # And a change made in this process is seen by the very next decision, even before Redis's
    # invalidation message is handled (held back here)
    cache = profile_cache.current()
    forget = cache.forget
    monkeypatch.setattr(
        cache, "forget", lambda keys, from_server=False: from_server or forget(keys)
    )
    services.profile_set_traits(visitor="ann", traits={"tier": "gold"})
    with django_assert_num_queries(0):
        assert variant() == "gold"
    monkeypatch.undo()
    # And so is a change made by another process, once Redis has told this one
    key = profile_cache_key(pseudonymize("ann"))
    document = json.loads(redis_client.get(key))
    document["traits"]["tier"] = "silver"
    redis_client.set(key, json.dumps(document))
    wait_for(lambda: variant() == "default", timeout=5, interval=0.01)


@pytest.mark.django_db
def test_metrics__profile_cache__counters_exposed(client, redis_client):
    # Given a process that has served a profile read
    redis_client.set(KEY, b"{}")
    profile_cache.profile_raw(KEY)
    # When /metrics is scraped
    text = client.get("/metrics").content.decode()
    # Then the cache's counters are there (summed over processes, no pid), with help texts
    for name in ("hits", "misses", "bypassed", "invalidations", "flushes"):
        assert f"\nmosaic_profile_cache_{name}_total " in text
        assert f"# HELP mosaic_profile_cache_{name}_total" in text
    assert set(profile_cache.metrics()) <= set(metrics.HELP)
    # And the read just made is published, not only counted in the process
    assert (
        metrics.value("mosaic_profile_cache_bypassed_total")
        + metrics.value("mosaic_profile_cache_misses_total")
        >= 1
    )
