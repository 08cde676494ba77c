"""Validation of incoming events, one event at a time, so a batch can be partly accepted."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from core.serializers import BoundedDictField, StrictSerializer
from core.validators import (
    MAX_JSON_DEPTH,
    has_control_characters,
    json_depth,
    validate_visitor_id,
)
from profiles.aggregates import CENT
from profiles.models import EventType

MAX_FUTURE = timedelta(minutes=10)
MAX_UTM = 20  # utm_* parameters of a context (five are standard)
MAX_AGE = timedelta(days=365 * 5)


class EventContextSerializer(StrictSerializer):
    url = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    referrer = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    utm = BoundedDictField(
        child=serializers.CharField(max_length=200), required=False, max_items=MAX_UTM
    )
    user_agent = serializers.CharField(max_length=500, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=35, required=False, allow_blank=True)


class EventSerializer(StrictSerializer):
    event_id = serializers.UUIDField()
    visitor = serializers.CharField(max_length=200, validators=[validate_visitor_id])
    user_id = serializers.CharField(max_length=200, required=False)
    type = serializers.ChoiceField(choices=EventType.choices)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    properties = serializers.DictField(required=False, default=dict)
    value = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, coerce_to_string=False
    )
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False, allow_blank=True)
    occurred_at = serializers.DateTimeField(required=False)
    context = EventContextSerializer(required=False)

    def validate_properties(self, value):
        # Deep nesting exhausts the recursion of the JSON encoders (queue, storage): refused
        # first, by an iterative walk, before the recursive checks below.
        if json_depth(value) > MAX_JSON_DEPTH:
            raise serializers.ValidationError(f"Nested more than {MAX_JSON_DEPTH} levels deep.")
        # PostgreSQL's jsonb cannot hold U+0000: such a batch would fail at every retry.
        if _holds_nul(value):
            raise serializers.ValidationError("Must not contain NUL characters (\\u0000).")
        # The queue and the storage path write JSON with orjson, which keeps integers exact only
        # within 64 bits: refused here rather than rounded later.
        if _holds_big_int(value):
            raise serializers.ValidationError(
                "Integers must lie between -2**63 and 2**64 - 1 (send larger ones as strings)."
            )
        return value

    def validate_occurred_at(self, value):
        now = timezone.now()
        if value > now + MAX_FUTURE:
            raise serializers.ValidationError("Is in the future (more than 10 minutes ahead).")
        if value < now - MAX_AGE:
            raise serializers.ValidationError("Is older than 5 years.")
        return value

    def validate(self, attrs):
        if attrs["type"] == EventType.CUSTOM and not attrs.get("name"):
            raise serializers.ValidationError({"name": ["Required for custom events."]})
        attrs["event_id"] = str(attrs["event_id"])
        attrs["occurred_at"] = (attrs.get("occurred_at") or timezone.now()).isoformat()
        if attrs.get("value") is not None:
            attrs["value"] = str(attrs["value"])
        return attrs


_EVENT_FIELDS = frozenset(
    {
        "event_id",
        "visitor",
        "user_id",
        "type",
        "name",
        "properties",
        "value",
        "currency",
        "occurred_at",
        "context",
    }
)
_CONTEXT_LIMITS = {"url": 2000, "referrer": 2000, "user_agent": 500, "locale": 35}
_EVENT_TYPES = frozenset(EventType.values)
_PLAIN_AMOUNT = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _holds_big_int(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return not -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return any(_holds_big_int(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_big_int(item) for item in value)
    return False


def _plain_text(value: Any, max_length: int, *, allow_blank: bool) -> str | None:
    """The trimmed string when EventSerializer would take it unchanged, else None."""
    if type(value) is not str:
        return None
    text = value.strip()
    if (not text and not allow_blank) or len(text) > max_length or "\x00" in text:
        return None
    if not text.isascii():
        try:
            text.encode("utf-8")  # lone surrogates: DRF refuses them
        except UnicodeEncodeError:
            return None
    return text


def event_fast_validate(
    raw: Any, *, now: datetime | None = None, zone: tzinfo | None = None
) -> dict[str, Any] | None:
    """EventSerializer's validated data for a plainly well-formed event, or None.

    The ingestion API validates hundreds of events per request; building a DRF serializer per
    event costs far more than the checks themselves. This accepts only inputs that
    EventSerializer accepts and returns exactly what it would; anything unusual (any error, any
    coercion it would do) returns None and the caller uses EventSerializer, which also words
    the errors. tests/unit/ingestion/test_events_validation.py checks both agree. A batch passes
    `now` and the current `zone` once for all its events (reading them costs more than the checks
    of one event).
    """
    if type(raw) is not dict or not raw.keys() <= _EVENT_FIELDS:
        return None
    event_id = raw.get("event_id")
    if type(event_id) is not str:
        return None
    # The canonical form (what clients and mosaic.js send) is what str(UUID(...)) gives back: a
    # regular expression confirms it in a tenth of the time of building a UUID.
    if not _CANONICAL_UUID.fullmatch(event_id):
        try:
            event_id = str(uuid.UUID(hex=event_id))
        except ValueError:
            return None
    visitor = _plain_text(raw.get("visitor"), 200, allow_blank=False)
    event_type = raw.get("type")
    if (
        visitor is None
        or has_control_characters(visitor)
        or type(event_type) is not str
        or event_type not in _EVENT_TYPES
    ):
        return None
    data: dict[str, Any] = {"event_id": event_id, "visitor": visitor}
    if "user_id" in raw:
        data["user_id"] = _plain_text(raw["user_id"], 200, allow_blank=False)
        if data["user_id"] is None:
            return None
    data["type"] = event_type
    name = _plain_text(raw.get("name", ""), 200, allow_blank=True)
    if name is None or (event_type == EventType.CUSTOM and not name):
        return None
    data["name"] = name
    properties = raw.get("properties", {})
    # Two checks in one orjson call, conservatively: it writes U+0000 as \u0000 (a literal
    # backslash-u0000 text also matches), and it refuses integers beyond 64 bits. Either way
    # EventSerializer looks precisely and words the error.
    if type(properties) is not dict:
        return None
    if properties:
        if json_depth(properties) > MAX_JSON_DEPTH:
            return None
        try:
            if b"\\u0000" in orjson.dumps(properties):
                return None
        except TypeError:
            return None
    data["properties"] = properties
    if "value" in raw:
        value = raw["value"]
        if value is None:
            data["value"] = None
        elif (type(value) is str and _PLAIN_AMOUNT.fullmatch(value)) or (
            type(value) is int and abs(value) < 10**12
        ):
            data["value"] = str(Decimal(value).quantize(CENT))
        else:
            return None
    if "currency" in raw:
        currency = raw["currency"]
        if type(currency) is not str or (currency and not _CURRENCY.fullmatch(currency)):
            return None
        data["currency"] = currency
    if now is None:
        now = timezone.now()
    if "occurred_at" in raw:
        text = raw["occurred_at"]
        try:
            parsed = parse_datetime(text) if type(text) is str else None
        except ValueError:
            parsed = None
        if parsed is None:
            return None
        if zone is None:
            zone = timezone.get_current_timezone()
        try:  # year 1 east of UTC, or 9999 west of it, has no UTC time: the serializer says so
            parsed = (
                parsed.astimezone(zone)
                if timezone.is_aware(parsed)
                else parsed.replace(tzinfo=zone)
            )
        except OverflowError:
            return None
        if parsed > now + MAX_FUTURE or parsed < now - MAX_AGE:
            return None
        data["occurred_at"] = parsed.isoformat()
    else:
        data["occurred_at"] = now.isoformat()
    if "context" in raw:
        context = _context_fast(raw["context"])
        if context is None:
            return None
        data["context"] = context
    return data


def _context_fast(raw: Any) -> dict[str, Any] | None:
    if type(raw) is not dict:
        return None
    context: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "utm":
            if type(value) is not dict:
                return None
            if len(value) > MAX_UTM:
                return None
            utm = {}
            for utm_key, utm_value in value.items():
                utm[utm_key] = _plain_text(utm_value, 200, allow_blank=False)
                if utm[utm_key] is None:
                    return None
            context["utm"] = utm
        elif name in _CONTEXT_LIMITS:
            context[name] = _plain_text(value, _CONTEXT_LIMITS[name], allow_blank=True)
            if context[name] is None:
                return None
        else:
            return None
    return context


class EventBatchSerializer(StrictSerializer):
    """The envelope only; events are validated one by one by the view."""

    events = serializers.ListField(child=serializers.JSONField(), allow_empty=False)

    def validate_events(self, value):
        limit = settings.MOSAIC_EVENT_MAX_BATCH
        if len(value) > limit:
            raise serializers.ValidationError(
                f"At most {limit} events per batch; got {len(value)}."
            )
        return value
