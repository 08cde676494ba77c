"""The delivery configuration's version number in Redis, which every process compares with the
version of what it holds (the content snapshot, the recommendations' serving catalog) to know
when to rebuild.

A plain INCR would start again from 1 after Redis lost its data (a flush, a restore from an old
dump, a new server), so a process still holding version 3 from before the loss would take the
third change after it for "nothing changed" and serve stale content for good. The first bump
after the key went missing therefore sets it to the current time in milliseconds: larger than
any version reached before the loss (a version grows by one per change, far slower than the
clock), so the numbers never repeat.
"""

from __future__ import annotations

import time
from typing import cast

from .redis import get_redis, key

SNAPSHOT_VERSION_KEY = key("snapshot", "version")

# One key, one script: atomic, and on one hash slot under Redis Cluster.
_BUMP = """
local version = redis.call('INCR', KEYS[1])
if version == 1 then
  version = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], version)
end
return version
"""


def snapshot_version_bump() -> int:
    """Move the version on (raises redis.RedisError: callers log and keep their copy)."""
    now_ms = str(time.time_ns() // 1_000_000)
    return int(cast(int, get_redis().eval(_BUMP, 1, SNAPSHOT_VERSION_KEY, now_ms)))


def snapshot_version_read() -> int:
    """The current version; 0 while no change has been recorded since Redis started empty."""
    value = cast(bytes | None, get_redis().get(SNAPSHOT_VERSION_KEY))
    return int(value) if value is not None else 0
