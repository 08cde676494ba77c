"""The events API's fast validation gives the same result as EventSerializer, event by event."""

from __future__ import annotations

import json
import uuid

import pytest

from ingestion.serializers import EventSerializer, event_fast_validate
from tests.factories import event

FAST_CASES = [
    event("v1"),
    event("v1", "purchase", value="19.9", currency="EUR", properties={"category": "shoes"}),
    event("v1", "purchase", value=20, currency=""),
    event("  v1  ", "custom", name=" signup "),
    event("v1", occurred_at="2026-11-01T10:00:00"),  # naive: taken as UTC
    event("v1", occurred_at="2026-11-01T10:00:00.123+02:00"),
    event("v1", context={"url": " https://x.test/a ", "utm": {"source": "news"}, "locale": ""}),
    {"event_id": str(uuid.uuid4()).upper(), "visitor": "v2", "type": "search"},
    # Each of these is refused, or coerced by DRF: the fast path must hand them over.
    event("v1", value="1.234"),
    event("v1", value=1.5),
    event("v1", value=True),
    event("v1", value="NaN"),
    event("v1", currency=" EUR"),
    event("v1", "custom"),
    event(""),
    event(123),
    event("v1", "unknown"),
    event("v1", occurred_at="2999-01-01T00:00:00Z"),
    event("v1", occurred_at="yesterday"),
    event("v1", context={"url": None}),
    event("v1", context={"utm": {"source": ""}}),
    event("v1", properties=[1]),
    event("v1", user_id=""),
    event("v1", name="x\x00y"),
    {**event("v1"), "extra": 1},
    {**event("v1"), "event_id": "not-a-uuid"},
    "not an event",
]


@pytest.mark.parametrize(("index", "raw"), list(enumerate(FAST_CASES)))
def test_event_fast_validate__any_event__same_result_as_event_serializer(index, raw):
    # Given an event as a client may send it
    serializer = EventSerializer(data=raw)
    valid = serializer.is_valid()
    # When the API's fast path validates it
    fast = event_fast_validate(raw)
    # Then plain events (the first 8) take the fast path with exactly DRF's validated data, and
    # every other one is left to DRF (which refuses it, or coerces it its own way)
    assert (fast is not None) == (index < 8)
    if fast is not None:
        assert valid, serializer.errors
        expected = json.loads(json.dumps(serializer.validated_data))
        if "occurred_at" not in raw:  # both default to "now", microseconds apart
            fast.pop("occurred_at")
            expected.pop("occurred_at")
        assert fast == expected
