"""Rate-limit counters shared by every process through Redis, counted locally in batches.

The per-key and per-client limits (access.services.rate_limit_hit) count requests in fixed
one-minute windows, one Redis counter per (key or client, window). Asking Redis on every call
was the one round trip a keyed decide paid that a keyless one did not (docs/benchmarks.md,
issue #18). Here each process counts a call locally, and reports its calls to Redis in one
script call per `batch` calls of a counter (INCRBY of what it admitted since, plus the call at
hand, which Redis then admits or refuses against the shared total). Between two reports a
process admits on what it knows: the shared total as of its last report plus its own calls
since. So:

- **Most calls make no Redis command**: one in `batch` does (the batch is a twentieth of the
  limit, at most 100; 1 for limits under 40, which is then the old exact count per call).
- **Bound**: in one window at most `limit + (batch - 1) x processes` calls are admitted, because
  a process admits at most `batch - 1` calls Redis has not heard of, and once any report has
  crossed the limit every process refuses at its next report at the latest. With 2 web processes
  and the default key limit of 600 a minute (batch 30), at most 658.
- **Never early**: a call is refused only when the count Redis returned plus this process's own
  unreported calls has reached the limit, so never before `limit` calls were counted.
- **Refusals cost nothing either**: a counter known to be full is refused locally until its
  window ends (Retry-After says when).
- **Redis down**: the call is allowed (fail open, logged at most once a minute), as before: the
  endpoints have their own answer for a dead Redis, and refusing every request because the
  counter is unreachable would be worse than no limit. Unreported calls are then forgotten.

Counters of one call are given in order (a client's own, then the key's): a call refused by an
earlier counter is not counted against a later one, so a client over its own limit spends
nothing of the key's budget. Memory: one small entry per counter of the current window, at most
MAX_COUNTERS; past that, new counters are counted in Redis on every call (exact, not stored).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from core.logs import warn_limited

logger = logging.getLogger(__name__)

BATCH_MAX = 100
BATCH_FRACTION = 20  # a counter's batch is its limit // this, within 1..BATCH_MAX
MAX_COUNTERS = 50_000


def batch_for(limit: int) -> int:
    """Calls of a counter per report to Redis (1: every call is a report)."""
    return max(1, min(BATCH_MAX, limit // BATCH_FRACTION))


@dataclass(slots=True)
class _Counter:
    seen: int = 0  # the shared total Redis returned at this process's last report
    pending: int = 0  # calls this process admitted since, not yet reported


@dataclass(frozen=True, slots=True)
class Outcome:
    allowed: bool
    index: int  # the counter that refused the call (the last one when allowed)
    count: int  # that counter's count as this process knows it


# Reports one call over KEYS, in order: INCRBY each by the calls admitted since the last report
# (ARGV[2i]) plus this call, which stops counting at the first key whose total passes its limit
# (ARGV[2i + 1]); keys after it get only their admitted calls. ARGV[1]: the keys' TTL. Returns
# the 1-based index of the refusing key (0: none) and every key's total.
_REPORT_SCRIPT = """
local refused = 0
local result = {0}
for i, name in ipairs(KEYS) do
  local pending = tonumber(ARGV[2 * i])
  local total
  if refused == 0 then
    total = redis.call('INCRBY', name, pending + 1)
    if total > tonumber(ARGV[2 * i + 1]) then refused = i end
  elseif pending > 0 then
    total = redis.call('INCRBY', name, pending)
  else
    total = tonumber(redis.call('GET', name) or '0')
  end
  redis.call('EXPIRE', name, tonumber(ARGV[1]))
  result[i + 1] = total
end
result[1] = refused
return result
"""


class SharedCounters:
    """One process's view of the shared counters (one instance per process; tests make two to
    play two processes). `client` returns the Redis client to report to."""

    def __init__(self, client: Callable[[], redis.Redis]) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._window: int | None = None
        self._counters: dict[str, _Counter] = {}
        self._scripts: dict[int, Any] = {}

    def reset(self) -> None:
        with self._lock:
            self._window = None
            self._counters.clear()

    def hit(self, names: list[str], limits: list[int], *, window: int, ttl: int) -> Outcome:
        """Count one call against each counter `names[i]` (Redis keys of `window`) whose limit
        is `limits[i]`."""
        with self._lock:
            if window != self._window:  # a new minute: the old counters are gone from Redis too
                self._window = window
                self._counters.clear()
            counters = []
            for name in names:
                counter = self._counters.get(name)
                if counter is None:
                    counter = _Counter()
                    if len(self._counters) < MAX_COUNTERS:
                        self._counters[name] = counter
                    # else: not kept, so every call of it is a report (exact)
                counters.append(counter)
            report = False
            for index, (counter, limit) in enumerate(zip(counters, limits, strict=True)):
                known = counter.seen + counter.pending
                if known >= limit:
                    return Outcome(False, index, known)
                if counter.pending + 1 >= batch_for(limit) or counter is not self._counters.get(
                    names[index]
                ):
                    report = True
            if not report:
                for counter in counters:
                    counter.pending += 1
                last = counters[-1]
                return Outcome(True, len(counters) - 1, last.seen + last.pending)
            # Reported now: taken out of `pending` (another thread may admit on the rest).
            deltas = [counter.pending for counter in counters]
            for counter in counters:
                counter.pending = 0
        args: list[int] = [ttl]
        for delta, limit in zip(deltas, limits, strict=True):
            args += [delta, limit]
        try:
            client = self._client()
            refused, *totals = self._script(client)(keys=names, args=args)
        except redis.RedisError:
            warn_limited(
                logger, "ratelimit-redis-down", "access: Redis unavailable, rate limit not enforced"
            )
            return Outcome(True, len(names) - 1, 0)
        with self._lock:
            for counter, total in zip(counters, totals, strict=True):
                counter.seen = max(counter.seen, int(total))
        if refused:
            return Outcome(False, int(refused) - 1, int(totals[int(refused) - 1]))
        return Outcome(True, len(names) - 1, int(totals[-1]))

    def _script(self, client: redis.Redis) -> Any:
        """The script registered on this client (EVALSHA: the text is sent once)."""
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(_REPORT_SCRIPT)
        return script
