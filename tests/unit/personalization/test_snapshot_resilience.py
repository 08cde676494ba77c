"""Issue #13 item 13: a web process that starts while the database is down serves decisions from
the last snapshot kept in Redis; with neither, each placement answers a reason code, never 500."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from django.db import connection

from core.versions import snapshot_version_bump, snapshot_version_read
from personalization.snapshot import SOURCE_KEY, holder
from tests.factories import make_placement, make_variant

URL = "/api/v1/decide"


@contextmanager
def database_down():
    """The database unreachable (the connection re-opened to a database that does not exist)."""
    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = (
        "/nonexistent-dir/mosaic-down.sqlite3"
        if connection.vendor == "sqlite"
        else "mosaic_database_that_does_not_exist"
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original


def _hero(client) -> dict:
    response = client.get(URL, {"placements": "hero", "visitor": "v1"})
    assert response.status_code == 200, response.content
    return response.json()["placements"]["hero"]


@pytest.mark.django_db(transaction=True)
def test_decide__new_process_database_down__served_from_snapshot_kept_in_redis(
    client, redis_client
):
    # Given a configuration that some process built a snapshot of (kept in Redis)
    placement = make_placement("hero")
    make_variant(placement, "everyone", priority=1, template="<p>for everyone</p>")
    assert _hero(client)["reason"] == "targeted:everyone"
    assert redis_client.exists(SOURCE_KEY)
    # When a new process (no snapshot in memory) decides while the database is down
    holder.reset()
    with database_down():
        answer = _hero(client)
    # Then it serves the kept configuration, not a 500
    assert (answer["reason"], answer["html"]) == ("targeted:everyone", "<p>for everyone</p>")


@pytest.mark.django_db(transaction=True)
def test_decide__database_down_and_nothing_kept__reason_code_not_500(client, redis_client):
    # Given no snapshot anywhere (a fresh Redis) and a new process
    make_placement("hero")
    redis_client.delete(SOURCE_KEY)
    holder.reset()
    # When it decides while the database is down
    with database_down():
        answer = _hero(client)
    # Then the placement answers with the reason, and no content
    assert (answer["variant"], answer["html"], answer["reason"]) == (
        None,
        "",
        "fallback:snapshot_unavailable",
    )


@pytest.mark.django_db(transaction=True)
def test_decide__database_goes_down_after_start__process_keeps_its_snapshot(client, redis_client):
    placement = make_placement("hero")
    make_variant(placement, "everyone", priority=1, template="<p>x</p>")
    assert _hero(client)["reason"] == "targeted:everyone"
    # When the configuration version moves while the database is down (a rebuild would fail)
    redis_client.incr("mosaic:snapshot:version")
    holder._checked_at = 0.0
    with database_down():
        answer = _hero(client)
    assert answer["reason"] == "targeted:everyone"


@pytest.mark.django_db(transaction=True)
def test_decide__redis_lost_its_data_then_as_many_changes__process_rebuilds(client, redis_client):
    # Given a process serving version N of the configuration after N changes
    placement = make_placement("hero")
    first = make_variant(placement, "first", priority=1, template="<p>1</p>")
    snapshot_version_bump()
    holder._checked_at = 0.0
    assert _hero(client)["reason"] == "targeted:first"
    held = holder._snapshot.version
    # When Redis loses its data and the configuration then changes at least as many times
    redis_client.flushall()
    first.delete()
    make_variant(placement, "second", priority=1, template="<p>2</p>")
    while snapshot_version_read() < held:
        snapshot_version_bump()
    holder._checked_at = 0.0
    # Then no version seen before the loss comes back, and the process serves the change
    assert snapshot_version_read() > held
    assert _hero(client)["reason"] == "targeted:second"


def test_snapshot_version_bump__key_missing__starts_from_the_clock_then_counts(redis_client):
    # Given no version recorded (a fresh or emptied Redis)
    assert snapshot_version_read() == 0
    # When the version is bumped twice
    first, second = snapshot_version_bump(), snapshot_version_bump()
    # Then it starts from the current time in ms and then moves by one
    assert abs(first - time.time() * 1000) < 60_000
    assert second == first + 1 == snapshot_version_read()
