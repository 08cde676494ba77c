"""Validation of attribute-analysis requests (the API and the admin form share it)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from rest_framework import serializers

from profiles.models import EventType
from segments.engine.features import spec_for_key

from .selectors import trait_kinds


class AnalysisTargetSerializer(serializers.Serializer):
    """Either an event in the window after `as_of`, or a declared trait."""

    event_type = serializers.ChoiceField(choices=EventType.choices, required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True)
    window_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    absence = serializers.BooleanField(required=False, default=False)
    trait = serializers.CharField(max_length=100, required=False)

    def validate(self, attrs):
        if bool(attrs.get("event_type")) == bool(attrs.get("trait")):
            raise serializers.ValidationError(
                {"event_type": "Give exactly one of event_type (with window_days) and trait."}
            )
        if attrs.get("event_type") and not attrs.get("window_days"):
            raise serializers.ValidationError(
                {"window_days": "Required with event_type (days after as_of)."}
            )
        if attrs.get("trait") and attrs["trait"] not in trait_kinds():
            raise serializers.ValidationError({"trait": "Not a declared trait."})
        return attrs


class AttributeAnalysisRequestSerializer(serializers.Serializer):
    target = AnalysisTargetSerializer()
    attributes = serializers.ListField(
        child=serializers.CharField(max_length=120), min_length=1, max_length=60
    )
    as_of = serializers.DateTimeField(
        required=False,
        help_text="Features use events up to here; default: now minus the target's window.",
    )
    threshold = serializers.FloatField(min_value=0.01, max_value=1.0, default=0.8)

    def validate_attributes(self, value):
        kinds = trait_kinds()
        errors = {}
        for index, key in enumerate(value):
            try:
                spec_for_key(key, kinds)
            except ValueError as exc:
                errors[index] = [str(exc)]
        if errors:
            raise serializers.ValidationError(errors)
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each attribute at most once.")
        return value

    def validate(self, attrs):
        target = attrs["target"]
        now = timezone.now()
        window = dt.timedelta(days=target.get("window_days") or 0)
        as_of = attrs.get("as_of") or now - window
        if target.get("event_type") and as_of + window > now:
            raise serializers.ValidationError(
                {"as_of": "as_of plus the target window is in the future: labels incomplete."}
            )
        attrs["as_of"] = as_of
        return attrs
