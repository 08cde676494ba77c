"""Issue #18: the rate limit without a Redis round trip per call (access.ratelimit).

Each SharedCounters instance plays one web process; two of them share the real Redis of the
test session. Redis commands are counted on each instance's own connections (a connection class
that records what it sends), so "no command" means none reached Redis from that process.
"""

from __future__ import annotations

import random

import pytest
import redis

from access.ratelimit import SharedCounters, batch_for
from tests.conftest import _free_port

WINDOW = 29_000_000  # any minute number: the counters' keys carry it
TTL = 65


class _Recorder:
    """The commands one instance's connections sent to Redis."""

    def __init__(self, url: str) -> None:
        sent = self.sent = []

        class RecordingConnection(redis.Connection):
            def send_command(self, *args, **kwargs):
                sent.append(str(args[0]).upper())
                return super().send_command(*args, **kwargs)

        pool = redis.ConnectionPool.from_url(url, connection_class=RecordingConnection)
        self.client = redis.Redis(connection_pool=pool)

    def reports(self) -> int:
        """Script calls (a first EVALSHA refused with NOSCRIPT is sent again after SCRIPT LOAD)."""
        return self.sent.count("EVALSHA") - self.sent.count("SCRIPT LOAD")


@pytest.fixture
def process_a(redis_url):
    recorder = _Recorder(redis_url)
    return recorder, SharedCounters(lambda: recorder.client)


@pytest.fixture
def process_b(redis_url):
    recorder = _Recorder(redis_url)
    return recorder, SharedCounters(lambda: recorder.client)


def hit(counters: SharedCounters, limit: int, name: str = "mosaic:ratelimit:1:w", window=WINDOW):
    return counters.hit([name], [limit], window=window, ttl=TTL).allowed


def test_batch__a_twentieth_of_the_limit__within_1_and_100():
    assert [batch_for(n) for n in (1, 10, 39, 40, 600, 1000, 10**9)] == [1, 1, 1, 2, 30, 50, 100]


def test_shared_counters__calls_within_the_share__no_redis_command(process_a, redis_client):
    # Given one process and a limit of 1,000 a minute (a batch of 50)
    recorder, counters = process_a
    # When it serves 200 calls, noting which of them sent anything to Redis
    talked = []
    for call in range(200):
        before = len(recorder.sent)
        assert hit(counters, 1000)
        if len(recorder.sent) > before:
            talked.append(call)
    # Then only every 50th call reported (one script call each), the others sent nothing
    assert talked == [49, 99, 149, 199]
    assert recorder.reports() == 4
    # And Redis holds the exact count of the calls
    assert int(redis_client.get("mosaic:ratelimit:1:w")) == 200


def test_shared_counters__two_processes_past_the_limit__overshoot_within_bound(
    process_a, process_b, redis_client
):
    # Given two processes sharing a limit of 100 (a batch of 5), the first having spent it all
    (_, a), (recorder_b, b) = process_a, process_b
    batch = batch_for(100)
    assert [hit(a, 100) for _ in range(100)] == [True] * 100
    # When the second, which has not reported yet, is called 20 times
    answers = [hit(b, 100) for _ in range(20)]
    # Then it admits what it may admit without asking (batch - 1 calls), learns at its first
    # report that the limit is spent, and refuses from then on without asking Redis again
    assert answers == [True] * (batch - 1) + [False] * (20 - batch + 1)
    assert recorder_b.reports() == 1
    # And the first process refuses too: at most limit + (batch - 1) x processes were admitted
    assert not hit(a, 100)
    assert answers.count(True) == batch - 1  # within the bound of (batch - 1) x 2
    assert int(redis_client.get("mosaic:ratelimit:1:w")) == 100 + batch


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shared_counters__two_processes_interleaved__never_early_never_past_the_bound(
    process_a, process_b, seed
):
    # Given two processes sharing a limit of 1,000 (a batch of 50), called in a random order
    (recorder_a, a), (recorder_b, b) = process_a, process_b
    limit, batch = 1000, batch_for(1000)
    chooser = random.Random(seed)
    # When 3,000 calls arrive in one window
    calls = [chooser.choice("ab") for _ in range(3000)]
    answers = [hit(a if process == "a" else b, limit) for process in calls]
    # Then the first `limit` calls were all admitted (never refused early), and at most
    # limit + (batch - 1) x 2 in all
    assert all(answers[:limit])
    assert limit <= answers.count(True) <= limit + (batch - 1) * 2
    # And a process that has refused a call (it knows the limit is spent) refuses every later one
    for process in "ab":
        mine = [allowed for allowed, p in zip(answers, calls, strict=True) if p == process]
        first_refusal = mine.index(False)
        assert not any(mine[first_refusal:])
    # And Redis was asked about one call in a batch (plus a refusal report per process)
    assert recorder_a.reports() + recorder_b.reports() <= limit // batch + 4


def test_shared_counters__new_window__counted_afresh(process_a):
    _, counters = process_a
    assert [hit(counters, 3) for _ in range(4)] == [True, True, True, False]
    # The next minute's counter is another key, and the process's old counts are dropped
    assert hit(counters, 3, name="mosaic:ratelimit:1:w2", window=WINDOW + 1)


def test_shared_counters__client_refused__key_budget_not_spent(process_a, redis_client):
    # Given a client limited to 2 calls and a key limited to 1,000 (the client counted first)
    recorder, counters = process_a
    names = ["mosaic:ratelimit:1:client:c:w", "mosaic:ratelimit:1:w"]
    # When the client calls 5 times
    outcomes = [counters.hit(names, [2, 1000], window=WINDOW, ttl=TTL) for _ in range(5)]
    # Then 2 are admitted, the rest refused by the client's counter, and only the admitted
    # calls reached the key's counter
    assert [o.allowed for o in outcomes] == [True, True, False, False, False]
    assert {o.index for o in outcomes[2:]} == {0}
    assert int(redis_client.get(names[1])) == 2
    assert recorder.reports() == 2


def test_shared_counters__redis_down__calls_allowed(caplog):
    # Given a process whose Redis does not answer (nothing listens on the port)
    dead = redis.Redis(port=_free_port(), socket_connect_timeout=0.2)
    counters = SharedCounters(lambda: dead)
    # Then every call is allowed (fail open, as before), with the reason logged once
    assert all(hit(counters, 1) for _ in range(5))
    assert sum("rate limit not enforced" in r.getMessage() for r in caplog.records) == 1
