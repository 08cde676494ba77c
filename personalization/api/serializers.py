"""Request and answer shapes of the decide endpoint (also the OpenAPI documentation)."""

from __future__ import annotations

from rest_framework import serializers

from core.serializers import BoundedDictField, BoundedListField, StrictSerializer
from core.validators import validate_visitor_id
from ingestion.serializers import MAX_UTM
from personalization.context import DEVICES

# Limits shared with the view's fast validation (personalization.api.views._fast_validated).
PLACEMENT_KEY = r"^[-a-zA-Z0-9_]+$"
PLACEMENT_KEY_MAX_LENGTH = 100
MAX_PLACEMENTS = 20
VISITOR_MAX_LENGTH = 200
MAX_ATTRIBUTES = 100  # request.attributes.* of a decide
CONTEXT_TEXT_MAX_LENGTHS = {"url": 2000, "referrer": 2000, "locale": 35}


class DecideContextSerializer(StrictSerializer):
    url = serializers.CharField(
        max_length=CONTEXT_TEXT_MAX_LENGTHS["url"], required=False, allow_blank=True
    )
    referrer = serializers.CharField(
        max_length=CONTEXT_TEXT_MAX_LENGTHS["referrer"], required=False, allow_blank=True
    )
    locale = serializers.CharField(
        max_length=CONTEXT_TEXT_MAX_LENGTHS["locale"], required=False, allow_blank=True
    )
    device = serializers.ChoiceField(choices=list(DEVICES), required=False, allow_blank=True)
    utm = BoundedDictField(
        child=serializers.CharField(max_length=200), required=False, max_items=MAX_UTM
    )
    attributes = BoundedDictField(required=False, max_items=MAX_ATTRIBUTES)


class DecideRequestSerializer(StrictSerializer):
    placements = BoundedListField(
        child=serializers.RegexField(PLACEMENT_KEY, max_length=PLACEMENT_KEY_MAX_LENGTH),
        allow_empty=False,
        max_length=MAX_PLACEMENTS,
    )
    visitor = serializers.CharField(
        max_length=VISITOR_MAX_LENGTH,
        required=False,
        allow_blank=True,
        validators=[validate_visitor_id],
    )
    context = DecideContextSerializer(required=False)
    explain = serializers.BooleanField(required=False, default=False)
    force_arm = serializers.RegexField(
        r"^[-a-zA-Z0-9_]{1,100}:[-a-zA-Z0-9_]{1,100}$",
        required=False,
        help_text="experiment:arm to preview (secret key or staff only; never counted).",
    )


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
