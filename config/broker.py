"""A guard for kombu's Redis transport (issue #13, item 12): a closed connection reads as a
connection error, not an AttributeError that kills the worker.

When the broker connection drops, Celery closes it; a channel whose client pool was not yet built
(or was dropped) then builds one from `channel.connection.client`, which the close has already set
to None. kombu 5.7.0 raises `AttributeError: 'NoneType' object has no attribute 'hostname'` from
`Channel._connparams`, in "Restoring unacknowledged messages" or in an ack: Celery treats it as
unrecoverable and the worker exits (tests/integration/worker/test_worker_broker_outage.py saw it
under load, the review in 5 of 10 outages). Raised as redis's ConnectionError instead, it is one of
the transport's connection errors: Celery ignores it while closing, logs a failed ack, and
reconnects. The messages not restored then stay in Redis's unacked set and are redelivered after the
visibility timeout (CELERY_BROKER_TRANSPORT_OPTIONS, 600 s): late, never lost.
"""

from __future__ import annotations

import redis
from kombu.transport import redis as kombu_redis

_original_connparams = kombu_redis.Channel._connparams


def _connparams(self, asynchronous=False):
    if self.connection is None or self.connection.client is None:
        raise redis.exceptions.ConnectionError("the broker connection is closed")
    return _original_connparams(self, asynchronous=asynchronous)


def install() -> None:
    """Patch kombu's Redis channel once (idempotent)."""
    if kombu_redis.Channel._connparams is not _connparams:
        kombu_redis.Channel._connparams = _connparams
