"""A per-process copy of the profile documents decisions read, kept fresh by Redis itself.

Why: one Redis GET per decision was about half of a web worker's time. Profiles change far less
often than they are read, so each process keeps the raw documents it read and Redis tells it when
one changes: "client-side caching" with server-assisted invalidation (CLIENT TRACKING, Redis ≥ 6)
in RESP2 redirect mode. redis-py's own client-side cache needs RESP3 and Redis ≥ 7.4; the embedded
server is 6.2.

How: per process, a daemon thread holds an *invalidation connection* subscribed to
`__redis__:invalidate`; the cached GETs go over one *data connection* with
`CLIENT TRACKING ON REDIRECT <invalidation connection's id>`. The server remembers every key that
connection read (present or not) and publishes it to the invalidation connection when it is
written, deleted or expires; a flush of the database publishes nil (we drop everything). Default,
non-BCAST mode: this process hears only about keys it read.

Freshness: an entry is dropped as soon as the thread reads the invalidation (normally within a
millisecond of the write; the thread needs the GIL, so a busy process may take a few ms more).
Writes made through `forget()` in this process are seen by it at once. Nothing is served while
the invalidation channel is down: losing it (or the data connection, whose tracking dies with it)
empties the cache, and reads go straight to Redis until the thread has subscribed again and a
fresh data connection tracks for the new id. A silent network loss is noticed by a PING within
about 3 s. Entries are re-read anyway after 75-100 % of MOSAIC_PROFILE_CACHE_MAX_AGE (a safety
net, not the mechanism; spread so that entries read together are not re-read together).

Redis Cluster (MOSAIC_REDIS_CLUSTER): tracking is per server, so the cache keeps one such channel
(invalidation connection, thread, data connection) per primary node, and reads a key over the
channel of the node that owns its slot; losing any channel empties the cache (docs/redis.md).

Raw bytes are kept, not parsed dicts: variant templates run in a sandbox that still allows calling
`dict.update`, so a shared dict could be changed by one render for every later decision.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import cast

import redis
from django.conf import settings
from django.core.signals import setting_changed

from core import metrics as core_metrics
from core.redis import cluster_enabled, get_redis

logger = logging.getLogger(__name__)

CHANNEL = "__redis__:invalidate"
POLL_SECONDS = 0.5  # how often the thread looks up from the socket (for close() and the PING)
PING_AFTER_SECONDS = 2.0  # silence after which the thread checks the connection is alive
PONG_WITHIN_SECONDS = 1.0
DATA_RETRY_SECONDS = 1.0  # after a data connection failure, plain GETs only for this long
MAX_RECONNECT_DELAY = 5.0
MAX_AGE_JITTER = 0.25  # entries live between (1 - this) and 1 times MOSAIC_PROFILE_CACHE_MAX_AGE

_SETTINGS = (
    "REDIS_URL",
    "MOSAIC_REDIS_CLUSTER",
    "MOSAIC_PROFILE_CACHE_SIZE",
    "MOSAIC_PROFILE_CACHE_MAX_AGE",
)
# Exported at /metrics as mosaic_profile_cache_<name>_total (help texts in metrics.HELP).
COUNTERS = ("hits", "misses", "bypassed", "invalidations", "flushes")


class ProfileCache:
    """One process's cache; see the module docstring. Build it in the process that uses it.

    `cluster`: the URL names a node of a Redis Cluster. Tracking is per server (a connection
    can only redirect to a client of its own node), so there is one channel per primary node,
    each with its own invalidation connection, thread and data connection; a key is read over
    the channel of the node that holds its slot.
    """

    def __init__(
        self,
        url: str,
        max_entries: int,
        max_age: float,
        reconnect_delay: float = 0.1,
        *,
        cluster: bool = False,
    ) -> None:
        self.url = url
        self.cluster = cluster
        self.max_entries = max_entries
        self.max_age = max_age
        self.reconnect_delay = reconnect_delay
        self.pid = os.getpid()
        # _lock guards the entries, the counts and every channel's redirect id and retry time,
        # and is never held across I/O.
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[bytes | None, float]] = OrderedDict()
        # Reads in flight per key, and keys invalidated while one was: such a read may carry the
        # value from before the write, so it is returned but not stored.
        self._in_flight: dict[str, int] = {}
        self._dirty: set[str] = set()
        # Bumped whenever the whole cache is dropped; a read started in an older epoch is not
        # stored (its tracking may belong to a connection that no longer exists).
        self._epoch = 0
        self.counts = dict.fromkeys(COUNTERS, 0)
        self._published = dict.fromkeys(COUNTERS, 0)  # what publish() has added to the metrics
        self._publish_lock = threading.Lock()
        self._stopped = False
        self._channels: dict[str, _Channel] = {}
        self._channels_lock = threading.Lock()
        self._single: _Channel | None = None
        if cluster:
            for node in self._primaries():
                self._channel_add(node)
        else:
            # Used only to build connections with the URL's options (TLS, password, database).
            pool = redis.ConnectionPool.from_url(
                url, socket_connect_timeout=0.25, socket_timeout=0.5, health_check_interval=0
            )
            self._single = self._channels[""] = _Channel(self, "", pool)

    # --- reads ---------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value of `key` (None when missing). Raises redis.RedisError like a plain GET."""
        now = time.monotonic()
        with self._lock:
            # An entry exists only while its channel is up: losing one empties the cache.
            entry = self._entries.get(key)
            if entry is not None:
                if now - entry[1] < self.max_age:
                    self._entries.move_to_end(key)
                    self.counts["hits"] += 1
                    return entry[0]
                del self._entries[key]
        channel = self._single or self._channel_for(key)
        with self._lock:
            redirect = channel.redirect_id if channel is not None else None
            if redirect is None or channel is None or now < channel.data_down_until:
                self.counts["bypassed"] += 1
                redirect = None
            else:
                self.counts["misses"] += 1
                epoch = self._epoch
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
        if redirect is None or channel is None:
            return _plain_get(key)
        stored = False
        try:
            value = self._tracked_get(channel, key, redirect)
            stored = True
        except (redis.exceptions.AskError, redis.exceptions.TryAgainError):
            # The slot is moving or has moved to another node (MOVED/ASK): the cluster client
            # follows it and learns the new owner, so the next read takes that node's channel.
            return _plain_get(key)
        except redis.ResponseError:
            raise  # the GET's own error, as a plain GET would raise it
        except redis.RedisError as exc:
            channel.data_failed(exc)
            # This request behaves exactly as without the cache (same client, same errors).
            return _plain_get(key)
        finally:
            self._read_done(key, epoch, value if stored else None, stored, now)
        return value

    def _tracked_get(self, channel: _Channel, key: str, redirect: int) -> bytes | None:
        return channel.tracked_get(key, redirect)

    def _read_done(
        self, key: str, epoch: int, value: bytes | None, store: bool, started: float
    ) -> None:
        with self._lock:
            remaining = self._in_flight[key] - 1
            dirty = key in self._dirty
            if remaining:
                self._in_flight[key] = remaining
            else:
                del self._in_flight[key]
                self._dirty.discard(key)
            if store and not dirty and epoch == self._epoch:
                # Aged from before the GET was sent, so max_age is never exceeded; and by up to a
                # quarter of it more, at random: entries read together (a warm-up, a burst of
                # visitors) are re-read spread over that quarter, not in one storm of GETs.
                aged = started - self.max_age * MAX_AGE_JITTER * random.random()
                self._entries[key] = (value, aged)
                self._entries.move_to_end(key)
                if len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)

    # --- cluster nodes -------------------------------------------------------------------------

    def _primaries(self) -> list:
        return get_redis().get_primaries()  # type: ignore[attr-defined]

    def _channel_for(self, key: str) -> _Channel | None:
        """The channel of the primary that holds `key`'s slot (started on first use); None
        when the cluster's map has no owner for it (the read then bypasses)."""
        try:
            client = get_redis()
            node = client.nodes_manager.get_node_from_slot(client.keyslot(key))  # type: ignore[attr-defined]
        except Exception:  # slot not covered, cluster map unavailable: read without the cache
            return None
        channel = self._channels.get(node.name)
        if channel is None:
            channel = self._channel_add(node)
        return channel

    def _channel_add(self, node) -> _Channel | None:
        with self._channels_lock:
            if self._stopped:
                return None
            channel = self._channels.get(node.name)
            if channel is None:
                pool = node.redis_connection.connection_pool
                channel = self._channels[node.name] = _Channel(self, node.name, pool)
                # A failover or resharding made another node primary: stop listening to nodes
                # that no longer are (their thread would retry a dead address forever).
                try:
                    live = {n.name for n in self._primaries()}
                except Exception:
                    live = set(self._channels)
                for name in [n for n in self._channels if n not in live and n != node.name]:
                    self._channels.pop(name).close()
            return channel

    # --- invalidation --------------------------------------------------------------------------

    def forget(self, keys: Iterable[str | bytes] | None, *, from_server: bool = False) -> None:
        """Drop these keys (None: all), and keep reads of them now in flight from being stored."""
        with self._lock:
            if keys is None:
                self._drop_all()
                return
            count = 0
            for key in keys:
                if isinstance(key, bytes):
                    key = key.decode("utf-8", "replace")
                self._entries.pop(key, None)
                if key in self._in_flight:
                    self._dirty.add(key)
                count += 1
            if from_server:
                self.counts["invalidations"] += count

    def clear(self) -> None:
        with self._lock:
            self._drop_all()

    def _drop_all(self) -> None:  # with self._lock held
        self._entries.clear()
        self._epoch += 1
        self.counts["flushes"] += 1

    def publish(self) -> None:
        """Add the counts since the last call to the multiprocess metrics (core.metrics): the
        thread does it every POLL_SECONDS, so reads pay a dict increment, not a metrics write."""
        with self._publish_lock:
            with self._lock:
                counts = dict(self.counts)
            for name, count in counts.items():
                delta = count - self._published[name]
                if delta:
                    core_metrics.PROFILE_CACHE[name].inc(delta)
                    self._published[name] = count

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def redirect_id(self) -> int | None:
        """The invalidation connection's client id while the cache is in use, else None (on a
        cluster: while every known node's channel is up, the first node's id)."""
        with self._lock:
            ids = [channel.redirect_id for channel in self._channels.values()]
        if not ids or None in ids:
            return None
        return ids[0]

    def redirect_ids(self) -> dict[str, int | None]:
        """Each channel's invalidation client id, by node name ("" on a single server)."""
        with self._lock:
            return {name: channel.redirect_id for name, channel in self._channels.items()}

    def close(self) -> None:
        """Stop using the cache; the threads end within POLL_SECONDS."""
        with self._channels_lock:
            self._stopped = True
            channels = list(self._channels.values())
        for channel in channels:
            channel.close()
        with self._lock:
            self._drop_all()


class _Channel:
    """One server's half of the cache: the invalidation connection (read by its own daemon
    thread) and the data connection whose tracking redirects to it. Its redirect id and retry
    time are guarded by the cache's lock."""

    def __init__(self, cache: ProfileCache, node: str, pool: redis.ConnectionPool) -> None:
        self.cache = cache
        self.node = node
        # The pool is used only for its connection options (TLS, password, database).
        self._connection_class = pool.connection_class
        self._kwargs = {**pool.connection_kwargs, "health_check_interval": 0}
        self.redirect_id: int | None = None  # None: no invalidation channel, reads bypass
        self.data_down_until = 0.0
        # The data connection, and the invalidation client id its tracking redirects to.
        self._data_lock = threading.Lock()
        self._data: redis.Connection | None = None
        self._data_redirect: int | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._listen, name="mosaic-profile-cache", daemon=True
        )
        self._thread.start()

    def _connection(self, name: str) -> redis.Connection:
        return self._connection_class(**{**self._kwargs, "client_name": name})

    def tracked_get(self, key: str, redirect: int) -> bytes | None:
        with self._data_lock:
            conn = self._data
            try:
                if conn is None or self._data_redirect != redirect:
                    self._data_drop()
                    conn = self._connection("mosaic-profile-cache")
                    conn.connect()
                    conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", redirect)
                    conn.read_response()
                    self._data, self._data_redirect = conn, redirect
                conn.send_command("GET", key)
                return conn.read_response()
            except redis.ResponseError as exc:
                if self._data is not conn:  # tracking refused (e.g. the id just vanished)
                    conn.disconnect()
                    raise redis.ConnectionError(f"CLIENT TRACKING refused: {exc}") from exc
                raise  # the GET's own error (e.g. WRONGTYPE, MOVED): the connection is fine
            except BaseException:
                # Never reuse it: redis-py would reconnect it on next use, without tracking.
                if conn is not None:
                    conn.disconnect()
                self._data_drop()
                raise

    def _data_drop(self) -> None:  # with self._data_lock held
        # Redis forgets a connection's tracked keys when it closes: what we hold is unguarded.
        if self._data is not None:
            self._data.disconnect()
            self._data = None
            with self.cache._lock:
                self.cache._drop_all()

    def data_failed(self, exc: Exception) -> None:
        with self._data_lock:
            self._data_drop()
        with self.cache._lock:
            self.data_down_until = time.monotonic() + DATA_RETRY_SECONDS
        logger.warning("profile cache: data connection failed (%s); reading Redis directly", exc)

    def _listen(self) -> None:
        cache = self.cache
        delay = cache.reconnect_delay
        while not self._stopped.is_set():
            conn = None
            try:
                conn = self._connection("mosaic-profile-cache-invalidations")
                conn.connect()
                conn.send_command("CLIENT", "ID")
                client_id = int(conn.read_response())
                conn.send_command("SUBSCRIBE", CHANNEL)
                conn.read_response()  # the subscription's confirmation
                with cache._lock:
                    # Entries tracked for an earlier id would never be invalidated.
                    cache._drop_all()
                    self.redirect_id = client_id
                delay = cache.reconnect_delay
                self._read_invalidations(conn)
            except Exception as exc:  # whatever happened, the entries are unguarded now
                if not self._stopped.is_set():
                    level = logging.WARNING if delay == cache.reconnect_delay else logging.DEBUG
                    logger.log(
                        level, "profile cache: invalidation channel lost (%s%r)", self.node, exc
                    )
            finally:
                with cache._lock:
                    self.redirect_id = None
                    cache._drop_all()
                if conn is not None:
                    conn.disconnect()
            cache.publish()  # the bypassed reads of a lost channel are counted too
            self._stopped.wait(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)

    def _read_invalidations(self, conn: redis.Connection) -> None:
        heard = published = time.monotonic()
        ping_sent: float | None = None
        while not self._stopped.is_set():
            if time.monotonic() - published >= POLL_SECONDS:
                self.cache.publish()
                published = time.monotonic()
            if conn.can_read(timeout=POLL_SECONDS):
                message = conn.read_response()
                heard, ping_sent = time.monotonic(), None
                # [b"message", channel, [keys] or None]; the other kind is the reply to our PING.
                if message[0] == b"message":
                    self.cache.forget(message[2], from_server=True)
                continue
            now = time.monotonic()
            if ping_sent is None:
                if now - heard > PING_AFTER_SECONDS:
                    conn.send_command("PING")
                    ping_sent = now
            elif now - ping_sent > PONG_WITHIN_SECONDS:
                raise redis.ConnectionError("no answer to PING on the invalidation connection")

    def close(self) -> None:
        self._stopped.set()
        with self.cache._lock:
            self.redirect_id = None
            self.cache._drop_all()
        with self._data_lock:
            self._data_drop()


def _plain_get(key: str) -> bytes | None:
    """A GET without the cache, through the process's client (same errors as without it)."""
    return cast(bytes | None, get_redis().get(key))


# --- the process's cache -----------------------------------------------------------------------

_current: ProfileCache | None = None
_current_lock = threading.Lock()
_retired_counts = dict.fromkeys(COUNTERS, 0)  # of caches replaced in this process


def profile_raw(key: str) -> bytes | None:
    """The raw value of a profile key for the decision path: cached, or one GET.

    Raises redis.RedisError when Redis is unavailable, as `get_redis().get` would.
    """
    cache = _current
    # A forked child must not use its parent's cache: the thread did not survive the fork, so
    # nothing would ever invalidate it (gunicorn forks workers; the cache is built lazily in each).
    if cache is None or cache.pid != os.getpid() or cache.url != settings.REDIS_URL:
        cache = _current_rebuild()
        if cache is None:
            return _plain_get(key)
    return cache.get(key)


def _current_rebuild() -> ProfileCache | None:
    global _current
    with _current_lock:
        cache = _current
        if cache is not None and cache.pid == os.getpid() and cache.url == settings.REDIS_URL:
            return cache
        if cache is not None and cache.pid == os.getpid():
            _retire(cache)
        _current = None
        if settings.MOSAIC_PROFILE_CACHE_SIZE > 0:
            _current = ProfileCache(
                settings.REDIS_URL,
                settings.MOSAIC_PROFILE_CACHE_SIZE,
                settings.MOSAIC_PROFILE_CACHE_MAX_AGE,
                cluster=cluster_enabled(),
            )
        return _current


def _retire(cache: ProfileCache) -> None:
    cache.close()
    cache.publish()
    for name, count in cache.counts.items():
        _retired_counts[name] += count


def reset() -> None:
    """Close this process's cache; the next read builds one from the current settings."""
    global _current
    with _current_lock:
        if _current is not None and _current.pid == os.getpid():
            _retire(_current)
        _current = None


def current() -> ProfileCache | None:
    cache = _current
    return cache if cache is not None and cache.pid == os.getpid() else None


def forget(keys: Iterable[str]) -> None:
    """Drop keys this process has just written or deleted, so that its next read sees the change
    without waiting for the invalidation message. Never builds a cache (the Celery worker has none).
    """
    cache = current()
    if cache is not None:
        cache.forget(keys)


def clear() -> None:
    cache = current()
    if cache is not None:
        cache.clear()


def publish() -> None:
    """Bring this process's share of the profile-cache metrics up to date (before a scrape)."""
    cache = current()
    if cache is not None:
        cache.publish()


def metrics() -> dict[str, int]:
    """Counters for /metrics, named mosaic_profile_cache_<counter>_total."""
    cache = current()
    return {
        f"mosaic_profile_cache_{name}_total": _retired_counts[name]
        + (cache.counts[name] if cache is not None else 0)
        for name in COUNTERS
    }


def _on_setting_changed(setting: str, **kwargs) -> None:
    if setting in _SETTINGS:
        reset()


def _after_fork_in_child() -> None:
    # The lock may have been held by another thread at the fork; the parent's cache and counts are
    # not ours (counters are per process, and a scraper sums them).
    global _current, _current_lock, _retired_counts
    _current_lock = threading.Lock()
    _current = None
    _retired_counts = dict.fromkeys(COUNTERS, 0)


setting_changed.connect(_on_setting_changed)
os.register_at_fork(after_in_child=_after_fork_in_child)
