"""Near-valid requests, generated: whatever a caller sends, the API answers below 500.

test_api_robustness.py feeds every endpoint fixed junk, which the first checks refuse. These
bodies have the right shape with wrong, extreme or odd values in any field (NUL, integers past 64
bits, far dates, nesting where a string belongs), so they get past the first checks and reach
validation, the queue, identify's merge, export and erasure. Examples are derandomized: the same
ones on every run, so that a red run is a regression, not a new draw.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from access import services as access_services

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ud800",
            "1e400",
            "NaN",
            "x" * 300,
            "2026-11-23T10:00:00Z",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "2026-13-45",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
EVENT_TYPES = ["page_view", "product_view", "add_to_cart", "remove_from_cart", "purchase"]


def _or_junk(good) -> st.SearchStrategy:
    return st.one_of(st.just(good) if not isinstance(good, st.SearchStrategy) else good, VALUES)


EVENTS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "event_id": _or_junk(st.builds(lambda: str(uuid.uuid4()))),
            "visitor": _or_junk("fuzz-visitor"),
            "user_id": VALUES,
            "type": _or_junk(st.sampled_from([*EVENT_TYPES, "search", "custom"])),
            "name": VALUES,
            "properties": _or_junk(st.dictionaries(st.text(max_size=10), VALUES, max_size=5)),
            "value": _or_junk(st.decimals(allow_nan=False, allow_infinity=False)),
            "currency": _or_junk("EUR"),
            "occurred_at": _or_junk("2026-11-23T10:00:00Z"),
            "context": _or_junk(
                st.dictionaries(
                    st.sampled_from(["url", "referrer", "utm", "user_agent", "locale"]),
                    VALUES,
                    max_size=4,
                )
            ),
        },
    ),
    max_size=4,
)
IDENTIFY = st.fixed_dictionaries(
    {},
    optional={
        "visitor": _or_junk("fuzz-visitor"),
        "user_id": _or_junk("fuzz-user"),
        "user_token": VALUES,
        "traits": _or_junk(st.dictionaries(st.text(max_size=10), VALUES, max_size=4)),
    },
)
PATH_VISITORS = st.one_of(
    st.just("fuzz-visitor"),
    st.text(min_size=1, max_size=40).filter(lambda s: not set(s) & set("/?#")),
)


def _post(client, path: str, body: object, **extra):
    # default=str: Decimals (and anything else json cannot encode) travel as strings
    data = json.dumps(body, default=str)
    return client.post(path, data, content_type="application/json", **extra)


def _below_500(response) -> None:
    assert response.status_code < 500, response.content[:300]


@pytest.mark.django_db
@SETTINGS
@given(events=EVENTS)
def test_events__generated_near_valid_batches__never_500(client, events):
    _below_500(_post(client, "/api/v1/events", {"events": events}))


@pytest.mark.django_db
@SETTINGS
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "placements": _or_junk(st.lists(VALUES, max_size=3)),
            "visitor": VALUES,
            "explain": VALUES,
            "context": _or_junk(
                st.dictionaries(
                    st.sampled_from(["url", "referrer", "utm", "locale", "device", "attributes"]),
                    VALUES,
                    max_size=4,
                )
            ),
        },
    )
)
def test_decide__generated_near_valid_bodies__never_500(client, body):
    _below_500(_post(client, "/api/v1/decide", body))


@pytest.mark.django_db
@SETTINGS
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "visitor": _or_junk("fuzz-visitor"),
            "purposes": _or_junk(
                st.dictionaries(
                    st.sampled_from(["analytics", "personalization", "marketing", "necessary"]),
                    VALUES,
                    max_size=4,
                )
            ),
            "source": VALUES,
            "policy_version": VALUES,
        },
    )
)
def test_consent__generated_near_valid_bodies__never_500(client, body):
    _below_500(_post(client, "/api/v1/consent", body))


@pytest.mark.django_db
@settings(SETTINGS, max_examples=60)
@given(visitor=PATH_VISITORS, identify=IDENTIFY, events=EVENTS)
def test_secret_key__generated_requests_on_every_endpoint__never_500(
    client, visitor, identify, events
):
    # Given a secret key, which may call everything the API offers
    _, raw = access_services.api_key_create(
        name="fuzz", kind="secret", rate_limit_per_minute=1_000_000
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    path_visitor = quote(visitor, safe="")
    # When it sends events, identifies, exports, erases and asks for an explained decision
    # Then no answer is a 500
    _below_500(_post(client, "/api/v1/events", {"events": events}, **auth))
    _below_500(_post(client, "/api/v1/identify", identify, **auth))
    _below_500(client.get(f"/api/v1/profiles/{path_visitor}/export", **auth))
    _below_500(client.delete(f"/api/v1/profiles/{path_visitor}", **auth))
    _below_500(
        client.get(f"/api/v1/decide?placements=hero&visitor={path_visitor}&explain=1", **auth)
    )
