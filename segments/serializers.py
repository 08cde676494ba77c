"""Validation of incoming events, one event at a time, so a batch can be partly accepted."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from .models import EventType

MAX_FUTURE = timedelta(minutes=10)
MAX_AGE = timedelta(days=365 * 5)


class StrictSerializer(serializers.Serializer):
    """Rejects keys it does not declare, naming them, instead of silently dropping them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class EventContextSerializer(StrictSerializer):
    url = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    referrer = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    utm = serializers.DictField(child=serializers.CharField(max_length=200), required=False)
    user_agent = serializers.CharField(max_length=500, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=35, required=False, allow_blank=True)


class EventSerializer(StrictSerializer):
    event_id = serializers.UUIDField()
    visitor = serializers.CharField(max_length=200)
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


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true/false: a consent choice sent as "yes" or 1 is a client bug, not a choice."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class ConsentPurposesSerializer(StrictSerializer):
    necessary = StrictBooleanField(required=False)
    analytics = StrictBooleanField(required=False)
    personalization = StrictBooleanField(required=False)
    marketing = StrictBooleanField(required=False)

    def validate_necessary(self, value):
        if value is not True:
            raise serializers.ValidationError("Necessary processing cannot be refused.")
        return value

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one purpose.")
        return attrs


class ConsentSerializer(StrictSerializer):
    """POST /api/v1/consent: a (possibly partial) choice per purpose."""

    visitor = serializers.CharField(max_length=200)
    purposes = ConsentPurposesSerializer()
    source = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    policy_version = serializers.CharField(
        max_length=32, required=False, allow_blank=True, default=""
    )


class VisitorPathSerializer(StrictSerializer):
    """The visitor id taken from the URL of the privacy endpoints."""

    visitor = serializers.CharField(max_length=200)
