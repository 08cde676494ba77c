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


def test_json_formatter__django_request_in_extra__written_as_its_type_only(rf):
    # Given Django's request log record: the request object itself is in `extra`, and its repr
    # names the path, here an export path holding a visitor id
    request = rf.get("/api/v1/profiles/raw-visitor-2/export")
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Forbidden", (), None
    )
    record.status_code = 403
    record.request = request
    # When formatted
    line = JsonFormatter().format(record)
    # Then the status is there and the request only as its type: no path, no visitor id
    document = json.loads(line)
    assert (document["status_code"], document["request"]) == (403, "<WSGIRequest>")
    assert "raw-visitor" not in line


@pytest.mark.django_db
def test_events_api__accepted__one_event_without_visitor_id(client, caplog):
    # Given a batch from an identifiable visitor
    visitor = "alice@example.com"
    caplog.set_level(logging.INFO, logger="ingestion.views")
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
