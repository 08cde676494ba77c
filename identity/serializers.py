"""Request shapes of identify and traits (unknown keys refused, naming them)."""

from __future__ import annotations

from rest_framework import serializers

from core.serializers import BoundedDictField, StrictSerializer
from core.validators import validate_visitor_id

MAX_TRAITS = 100


class IdentifySerializer(StrictSerializer):
    visitor = serializers.CharField(max_length=200, validators=[validate_visitor_id])
    user_id = serializers.CharField(max_length=200)
    user_token = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$",
        required=False,
        error_messages={
            "invalid": "Expected the hex HMAC-SHA256 of user_id and visitor (64 characters)."
        },
    )


class TraitsSerializer(StrictSerializer):
    visitor = serializers.CharField(max_length=200, validators=[validate_visitor_id])
    traits = BoundedDictField(allow_empty=False, max_items=MAX_TRAITS)

    def validate_traits(self, value):
        if len(value) > MAX_TRAITS:
            raise serializers.ValidationError(f"At most {MAX_TRAITS} traits per call.")
        too_long = [name for name in value if not name or len(name) > 100]
        if too_long:
            raise serializers.ValidationError("Trait names must be 1 to 100 characters.")
        return value
