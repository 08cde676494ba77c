"""Issue #13 item 9: nothing raw reaches Redis, and an erasure reaches Redis's files on disk.

Events are pseudonymised in the web process before they are queued (the queue and so the
append-only file never hold a visitor id or user id); after an erasure, one batched AOF rewrite
removes the erased profile document from the files Redis keeps on disk."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from core.embedded_redis import redis_server_binary, server_args, wait_until_up
from core.pseudonym import pseudonymize
from ingestion.queue import EVENT_QUEUE
from profiles import privacy
from profiles import services as profile_services
from tests.conftest import _free_port
from tests.factories import event

RAW_VISITOR = "raw-visitor-8f3a2c"
RAW_USER = "raw-user-7741"


def _everything_in(r: redis.Redis) -> str:
    """Every key name and value of the database, as one text."""
    parts = []
    for name in r.scan_iter(count=1000):
        parts.append(name.decode(errors="replace"))
        kind = r.type(name).decode()
        if kind == "string":
            parts.append(r.get(name).decode(errors="replace"))
        elif kind == "list":
            parts += [item.decode(errors="replace") for item in r.lrange(name, 0, -1)]
        elif kind == "hash":
            parts += [f"{k}={v}" for k, v in r.hgetall(name).items()]
        elif kind in ("set", "zset"):
            parts += [
                str(m) for m in (r.smembers(name) if kind == "set" else r.zrange(name, 0, -1))
            ]
    return "\n".join(parts)


@pytest.mark.django_db
def test_events__queued__no_raw_visitor_or_user_id_in_redis(client, redis_client):
    # Given events of a visitor with a user id, posted through the API
    batch = {"events": [event(RAW_VISITOR, user_id=RAW_USER), event(RAW_VISITOR, "purchase")]}
    response = client.post(
        "/api/v1/events", data=json.dumps(batch), content_type="application/json"
    )
    assert response.status_code == 202
    # Then Redis holds neither id, only their keyed hashes
    stored = _everything_in(redis_client)
    assert RAW_VISITOR not in stored
    assert RAW_USER not in stored
    queued = [json.loads(raw) for raw in redis_client.lrange(EVENT_QUEUE, 0, -1)]
    assert [item["visitor_key"] for item in queued] == [pseudonymize(RAW_VISITOR)] * 2
    assert queued[0]["user_key"] == pseudonymize(RAW_USER)
    assert all("visitor" not in item and "user_id" not in item for item in queued)


@pytest.fixture
def aof_redis(settings):
    """A redis-server of its own with the append-only file on, as in production."""
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server")
    port = _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="mosaic-aof-"))
    process = subprocess.Popen(
        server_args(binary, port=port, data_dir=data_dir, persistent=True),
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    wait_until_up(client)
    settings.REDIS_URL = url
    yield client, data_dir
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(data_dir, ignore_errors=True)  # its AOF holds the test's (pseudonymous) data


def _on_disk(data_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in data_dir.rglob("*") if path.is_file())


def _wait_rewritten(client: redis.Redis) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        time.sleep(0.1)
    raise AssertionError("the AOF rewrite did not finish")


@pytest.mark.django_db
def test_erase__then_aof_rewrite__erased_document_gone_from_disk(aof_redis):
    client, data_dir = aof_redis
    # Given a visitor whose profile document (with a trait) Redis wrote to its AOF
    profile_services.profile_set_traits(visitor=RAW_VISITOR, traits={"nickname": "secret-trait-qz"})
    client.execute_command("CONFIG", "SET", "appendfsync", "always")
    client.set("mosaic:flush", "1")  # one more write: the document is on disk by now
    assert b"secret-trait-qz" in _on_disk(data_dir)
    # When the visitor is erased, and the batched rewrite it scheduled runs
    result = privacy.profile_erase(profile_key=pseudonymize(RAW_VISITOR), actor="dpo")
    assert result.erased
    assert privacy.persistence_rewrite() == "rewrite_started"
    _wait_rewritten(client)
    # Then the files Redis keeps on disk no longer hold the erased document
    assert b"secret-trait-qz" not in _on_disk(data_dir)


@pytest.mark.django_db
def test_erasures__many__one_rewrite_scheduled(redis_client):
    # The first erasure of a window schedules the rewrite; the next ones ride along
    assert privacy.persistence_rewrite_schedule() is True
    assert privacy.persistence_rewrite_schedule() is False
    assert privacy.persistence_rewrite_schedule() is False
    # Running it frees the window (the Redis of the tests keeps no AOF: nothing to rewrite)
    assert privacy.persistence_rewrite() == "aof_off"
    assert privacy.persistence_rewrite_schedule() is True
