"""Structured logs: JSON lines, one event per product moment, no personal data."""

import json
import logging

import pytest

from core.logging import JsonFormatter, log_event
from tests.factories import event


def test_json_formatter__event_with_fields__one_json_object():
    # Given a product moment logged with its fields
    logger = logging.getLogger("test.moments")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        log_event(logger, "events.accepted", accepted=3, rejected=1)
    finally:
        logger.removeHandler(handler)
    # When formatted
    document = json.loads(JsonFormatter().format(records[0]))
    # Then it is one object with the event's name and fields
    assert document["event"] == "events.accepted"
    assert (document["accepted"], document["rejected"], document["level"]) == (3, 1, "INFO")


@pytest.mark.django_db
def test_events_api__accepted__one_event_without_visitor_id(client, caplog):
    # Given a batch from an identifiable visitor
    visitor = "alice@example.com"
    caplog.set_level(logging.INFO, logger="segments.views")
    # When it is accepted
    response = client.post(
        "/api/v1/events", {"events": [event(visitor)]}, content_type="application/json"
    )
    assert response.status_code == 202
    # Then exactly one product event says so, with counts and no visitor id anywhere
    moments = [r for r in caplog.records if r.getMessage() == "events.accepted"]
    assert len(moments) == 1
    line = JsonFormatter().format(moments[0])
    assert json.loads(line)["accepted"] == 1
    assert visitor not in line
