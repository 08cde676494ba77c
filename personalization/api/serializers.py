"""Request and answer shapes of the decide endpoint (also the OpenAPI documentation)."""

from __future__ import annotations

from rest_framework import serializers

from segments.serializers import StrictSerializer

PLACEMENT_KEY = r"^[-a-zA-Z0-9_]+$"
MAX_PLACEMENTS = 20


class DecideContextSerializer(StrictSerializer):
    url = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    referrer = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=35, required=False, allow_blank=True)
    device = serializers.ChoiceField(
        choices=["mobile", "tablet", "desktop"], required=False, allow_blank=True
    )
    utm = serializers.DictField(child=serializers.CharField(max_length=200), required=False)
    attributes = serializers.DictField(required=False)


class DecideRequestSerializer(StrictSerializer):
    placements = serializers.ListField(
        child=serializers.RegexField(PLACEMENT_KEY, max_length=100),
        allow_empty=False,
        max_length=MAX_PLACEMENTS,
    )
    visitor = serializers.CharField(max_length=200, required=False, allow_blank=True)
    context = DecideContextSerializer(required=False)
    explain = serializers.BooleanField(required=False, default=False)


class DecisionSerializer(serializers.Serializer):
    variant = serializers.CharField(allow_null=True)
    html = serializers.CharField()
    data = serializers.DictField()
    reason = serializers.CharField(
        help_text="targeted:<variant>, experiment:<key>/<arm>, default, default:no_consent, "
        "fallback:<why>"
    )
    experiment = serializers.DictField(allow_null=True)


class DecideResponseSerializer(serializers.Serializer):
    profile = serializers.ChoiceField(choices=["found", "new", "anonymous", "unavailable"])
    personalization = serializers.BooleanField(help_text="Whether the profile was used.")
    snapshot = serializers.IntegerField()
    placements = serializers.DictField(child=DecisionSerializer())
