"""Issue #13 item 7: a publishable key's budget protects the site and cannot be spent against it.
Callers without an allowed Origin have per-client limits of their own; one caller forging the
Origin is held to a share of the key's budget; the site's visitors together keep the key's limit."""

from __future__ import annotations

import pytest

from access import services

SHOP = "https://shop.example"
URL = "/api/v1/decide"


@pytest.fixture
def site_key(db, settings):
    settings.MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE = 10
    _, raw = services.api_key_create(
        name="web", kind="publishable", allowed_origins=[SHOP], rate_limit_per_minute=100
    )
    return raw


def call(client, raw, address, origin=None):
    headers = {"HTTP_X_MOSAIC_KEY": raw, "REMOTE_ADDR": address}
    if origin:
        headers["HTTP_ORIGIN"] = origin
    return client.get(URL, {"placements": "hero", "visitor": "v"}, **headers).status_code


def test_rate_limit__caller_without_origin_floods__site_keeps_its_budget(
    client, site_key, frozen_rate_window
):
    # Given a caller with no Origin header sending far more than the key's limit
    answers = [call(client, site_key, "198.51.100.7") for _ in range(150)]
    # Then it is held to its own per-client limit
    assert answers.count(200) == 10
    assert set(answers[10:]) == {429}
    # And the site's visitors (the allowed Origin, their own addresses) are served
    assert [call(client, site_key, f"203.0.113.{i}", SHOP) for i in range(20)] == [200] * 20


def test_rate_limit__one_caller_forging_the_origin__held_to_a_share_of_the_key(
    client, site_key, frozen_rate_window
):
    # Given one caller sending the site's Origin (a non-browser client can set any header)
    answers = [call(client, site_key, "198.51.100.7", SHOP) for _ in range(150)]
    # Then it gets at most its share (max(per-client limit, a tenth of the key's limit))
    assert answers.count(200) == 10
    # And the site's visitors still have the rest of the key's budget
    assert [call(client, site_key, f"203.0.113.{i}", SHOP) for i in range(50)] == [200] * 50


def test_rate_limit__site_visitors_together__key_limit_still_applies(
    client, site_key, frozen_rate_window
):
    # Given many visitors of the site, a few calls each
    answers = [call(client, site_key, f"203.0.113.{i % 60}", SHOP) for i in range(120)]
    # Then the key's own limit (100 a minute) still caps them together
    assert answers.count(200) == 100
    assert set(answers[100:]) == {429}


def test_rate_limit__ipv6_client__bucketed_by_its_64(client, site_key, frozen_rate_window):
    # Addresses of one /64 are one client (a host usually holds the whole /64)
    answers = [call(client, site_key, f"2001:db8:1:2::{i:x}") for i in range(1, 30)]
    assert answers.count(200) == 10


def test_rate_limit__site_visitor_within_its_share__no_redis_count_per_call(
    client, db, settings, frozen_rate_window, redis_client
):
    # Given a site key of 1,000 calls a minute (batch 50) and a per-client limit of 120 (the
    # client's share: max(120, 1000 // 10); batch 6)
    settings.MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE = 120
    _, raw = services.api_key_create(
        name="web", kind="publishable", allowed_origins=[SHOP], rate_limit_per_minute=1000
    )
    # When one visitor's browser calls decide 5 times
    assert [call(client, raw, "203.0.113.9", SHOP) for _ in range(5)] == [200] * 5
    # Then nothing was counted in Redis yet: the process admitted them from its own share
    assert redis_client.keys("mosaic:ratelimit:*") == []
    # And the 6th call reports all six, to the client's counter and the key's
    assert call(client, raw, "203.0.113.9", SHOP) == 200
    counts = {k.decode(): int(redis_client.get(k)) for k in redis_client.keys("mosaic:ratelimit:*")}
    assert sorted(counts.values()) == [6, 6]


def test_rate_limit__pseudonymization_key_rotated__client_counted_under_the_new_bucket(
    client, db, settings, frozen_rate_window, redis_client
):
    # Given a publishable key and a per-client limit of 1 (each client call reported at once)
    settings.MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE = 1
    _, raw = services.api_key_create(
        name="web", kind="publishable", allowed_origins=[SHOP], rate_limit_per_minute=10
    )
    # When one client calls (no Origin: its own bucket), the pseudonymisation key is rotated,
    # and the client calls again
    call(client, raw, "198.51.100.7")
    first = {k.decode() for k in redis_client.keys("mosaic:ratelimit:*client*")}
    settings.PSEUDONYMIZATION_KEY = "rotated-" + settings.PSEUDONYMIZATION_KEY
    call(client, raw, "198.51.100.7")
    both = {k.decode() for k in redis_client.keys("mosaic:ratelimit:*client*")}
    # Then the remembered bucket was not reused: the second call counts under the new key's
    # bucket (the address itself is in neither)
    assert len(first) == 1
    assert len(both) == 2
    assert not any("198.51.100.7" in k for k in both)
