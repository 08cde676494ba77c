"""Issue #13 item 13: a web process that starts while the database is down serves decisions from
the last snapshot kept in Redis; with neither, each placement answers a reason code, never 500."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection

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
