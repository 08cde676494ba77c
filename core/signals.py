"""Signals a lower layer sends and a higher layer receives, so that imports keep pointing down.

`redis_keys_written`: this process has just written or deleted these Redis keys (profile documents
and their aliases). Writers (segments' stage 2 and recompute, identify's merge, erasure) send it;
the delivery layer connects its profile cache's `forget` in `PersonalizationConfig.ready()`, so the
process's next decision reads the change without waiting for Redis's invalidation message. A
process with no receiver (a script that never loads the delivery app) simply drops the message.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.dispatch import Signal

redis_keys_written = Signal()


def keys_written(keys: Iterable[str]) -> None:
    """Announce keys this process wrote or deleted (no-op without receivers: no cost then)."""
    if redis_keys_written.has_listeners():
        redis_keys_written.send(sender=None, keys=list(keys))
