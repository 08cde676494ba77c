"""Warnings that could repeat once per request (a store down while traffic flows), logged at most
once per interval per kind, with the number left out since: an outage of Redis under load wrote
one WARNING per decide (29,743 lines in 16 s, issue #13 item 16)."""

from __future__ import annotations

import logging
import threading
import time

DEFAULT_INTERVAL = 10.0

_lock = threading.Lock()
_last: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def warn_limited(
    logger: logging.Logger,
    kind: str,
    message: str,
    *args: object,
    interval: float = DEFAULT_INTERVAL,
) -> bool:
    """logger.warning(message, *args) unless a warning of this `kind` was logged less than
    `interval` seconds ago; the next one logged says how many were left out. Returns whether it
    logged."""
    now = time.monotonic()
    with _lock:
        if now - _last.get(kind, float("-inf")) < interval:
            _suppressed[kind] = _suppressed.get(kind, 0) + 1
            return False
        _last[kind] = now
        left_out = _suppressed.pop(kind, 0)
    if left_out:
        message = f"{message} (%d more like it in the last %.0f s not logged)"
        args = (*args, left_out, interval)
    logger.warning(message, *args)
    return True


def reset() -> None:
    """Forget what was logged (tests)."""
    with _lock:
        _last.clear()
        _suppressed.clear()
