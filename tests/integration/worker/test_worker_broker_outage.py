"""Reliability (issue #13, item 12): a real Celery worker rides out its Redis broker being killed
while it consumes tasks, and consumes again once redis-server is back.

The review saw the worker die (kombu `AttributeError: 'NoneType' object has no attribute
'hostname'` after "Restoring unacknowledged messages") or hang (alive, consuming nothing, deaf to
SIGTERM) in 5 of 10 such outages. This test has its own redis-server (killing the session's one
would disturb the other tests, which run in parallel under xdist): SIGKILL while the worker is
busy, restart on the same port with the same data directory (AOF on, as the embedded Redis of
`make run`), and the worker must consume new tasks within a bound, stay alive, and stop on
SIGTERM. Three outages per worker, of different lengths, so that the reconnection is exercised
more than once in one process.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery

from core.embedded_redis import redis_server_binary, server_args, wait_until_up
from tests.conftest import _free_port, start_worker

pytestmark = [pytest.mark.worker, pytest.mark.slow]

BACKLOG = 12  # tasks queued before each outage: the worker is consuming when Redis dies
FRESH = 6  # tasks queued once Redis is back (behind what is left of the backlog)
TASK_SECONDS = 1.5  # each task runs longer than the shortest outage: it ends after reconnection
POOL = ("--pool", "prefork", "--concurrency", "2", "--include", "tests.outage_tasks")
OUTAGES_SECONDS = [0.5, 3.0, 8.0]
RESUME_BOUND_SECONDS = 45  # from redis-server back to every new task consumed
STOP_BOUND_SECONDS = 20


class OwnRedis:
    """A redis-server this test may kill and start again on the same port and data directory."""

    def __init__(self, data_dir: Path) -> None:
        binary = redis_server_binary()
        if binary is None:
            pytest.skip("no redis-server binary")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.args = server_args(binary, port=self.port, data_dir=data_dir, persistent=True)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)
        wait_until_up(redis.Redis.from_url(self.url), timeout=20)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def _send(url: str, count: int, tag: str) -> list[str]:
    """Queue `count` tasks of TASK_SECONDS each (tests/outage_tasks.py) and return their ids."""
    producer = Celery("outage-probe", broker=url, set_as_current=False)
    producer.conf.task_serializer = "json"
    ids = [f"{tag}-{uuid.uuid4()}" for _ in range(count)]
    with producer.connection_for_write() as connection:
        for task_id in ids:
            producer.send_task(
                "tests.outage_pause", args=[TASK_SECONDS], task_id=task_id, connection=connection
            )
    return ids


def _succeeded(log: str) -> set[str]:
    return set(re.findall(r"Task tests\.outage_pause\[([^\]]+)\] succeeded", log))


def _wait(predicate, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(message())
        time.sleep(0.25)


def _outage_round(worker, own_redis: OwnRedis, round_: int, outage: float) -> None:
    backlog = set(_send(own_redis.url, BACKLOG, f"backlog{round_}"))
    _wait(
        lambda: len(_succeeded(worker.output()) & backlog) >= 3,
        60,
        lambda: f"the worker consumed nothing before the outage:\n{worker.output()[-3000:]}",
    )

    # When redis-server is killed (SIGKILL) mid-consumption and started again on the same port
    # and data directory after `outage` seconds
    own_redis.kill()
    time.sleep(outage)
    own_redis.start()
    back_at = time.monotonic()

    # Then the worker is alive and consumes new tasks within the bound
    fresh = set(_send(own_redis.url, FRESH, f"after{round_}"))
    _wait(
        lambda: fresh <= _succeeded(worker.output()) or worker.process.poll() is not None,
        RESUME_BOUND_SECONDS,
        lambda: (
            f"outage {round_} ({outage} s): {len(fresh - _succeeded(worker.output()))} of {FRESH} "
            f"new tasks not consumed {RESUME_BOUND_SECONDS} s after Redis came back:\n"
            f"{worker.output()[-4000:]}"
        ),
    )
    assert worker.process.poll() is None, (
        f"outage {round_}: the worker died:\n{worker.output()[-4000:]}"
    )
    assert time.monotonic() - back_at < RESUME_BOUND_SECONDS


def test_worker__redis_killed_while_consuming__resumes_after_restart(own_redis, tmp_path):
    # Given a real worker consuming a backlog of tasks from its own redis-server
    worker = start_worker(own_redis.url, tmp_path / "worker.log", pool_args=POOL)
    try:
        # When Redis is killed under it and restarted, three times (see _outage_round)
        for round_, outage in enumerate(OUTAGES_SECONDS):
            _outage_round(worker, own_redis, round_, outage)
    finally:
        # Then SIGTERM still stops it (a hung worker ignored it)
        worker.process.send_signal(signal.SIGTERM)
        try:
            code = worker.process.wait(timeout=STOP_BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(timeout=10)
            code = None
    assert code == 0, f"SIGTERM did not stop the worker cleanly:\n{worker.output()[-3000:]}"
    assert "AttributeError" not in worker.output(), worker.output()[-4000:]


def test_worker__redis_down__retries_without_limit_and_stops_on_sigterm(own_redis, tmp_path):
    # Given a real worker running tasks, whose redis-server is then killed (SIGKILL) and stays
    # down: the worker is in its reconnection loop
    worker = start_worker(own_redis.url, tmp_path / "worker.log", pool_args=POOL)
    backlog = set(_send(own_redis.url, BACKLOG, "backlog"))
    _wait(
        lambda: len(_succeeded(worker.output()) & backlog) >= 3,
        60,
        lambda: f"the worker consumed nothing:\n{worker.output()[-3000:]}",
    )
    own_redis.kill()
    _wait(
        lambda: "Cannot connect to" in worker.output(),
        30,
        lambda: f"the worker did not notice the outage:\n{worker.output()[-3000:]}",
    )

    # Then it retries without a limit: Celery's default (100 tries, about 47 minutes) would end
    # it in a long outage. Its own log line says so: "Trying again in 2.00 seconds... (1/None)"
    _wait(
        lambda: re.search(r"Trying again .*\(1/\w+\)", worker.output()),
        30,
        lambda: f"no retry announced:\n{worker.output()[-3000:]}",
    )
    limits = set(re.findall(r"Trying again .*\(\d+/(\w+)\)", worker.output()))
    assert limits == {"None"}, limits

    # When it is sent SIGTERM (as a supervisor stopping or restarting it would)
    worker.process.send_signal(signal.SIGTERM)

    # Then it exits within the bound instead of hanging in the reconnection loop
    try:
        worker.process.wait(timeout=STOP_BOUND_SECONDS)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait(timeout=10)
        pytest.fail(f"SIGTERM ignored while Redis was down:\n{worker.output()[-3000:]}")
    assert "AttributeError" not in worker.output(), worker.output()[-4000:]


def test_broker_channel__connection_closed_under_it__connection_error_not_attribute_error(
    redis_url,
):
    # Given a kombu Redis channel (through Celery's app: config/broker.py's guard installed)
    # whose connection Celery has closed before the channel built its client pool: the state
    # the worker crashed in (its log: "Restoring 1 unacknowledged message(s)", then kombu's
    # AttributeError 'NoneType' object has no attribute 'hostname', "Unrecoverable error")
    from config.celery import app

    connection = app.connection_for_read(redis_url)
    channel = connection.channel()
    channel._pool = None
    connection.transport.client = None

    # When the channel restores its unacknowledged messages, as closing it does
    # Then the failure is one of the transport's connection errors, which Celery ignores while
    # closing and answers by reconnecting (an AttributeError ended the worker)
    with pytest.raises(connection.connection_errors):
        channel.qos.restore_unacked()
    connection.transport.client = connection
    connection.release()
