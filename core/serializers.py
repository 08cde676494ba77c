"""DRF building blocks every API of the project shares: strict serializers (unknown keys refused
by name) and bounded list/dict fields."""

from __future__ import annotations

from rest_framework import serializers

# At most this many unknown keys are named in an answer (a body may hold 150,000 of them).
MAX_NAMED_UNKNOWN = 10


class StrictSerializer(serializers.Serializer):
    """Rejects keys it does not declare, naming them (the first few), instead of silently
    dropping them; a body with far more keys than the serializer has fields is refused before
    any work."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            if len(data) > 4 * len(self.fields) + MAX_NAMED_UNKNOWN:
                raise serializers.ValidationError(
                    [f"Too many fields ({len(data):,}); at most {len(self.fields)} are known."]
                )
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                named = {name: ["Unknown field."] for name in unknown[:MAX_NAMED_UNKNOWN]}
                raise serializers.ValidationError(named)
        return super().to_internal_value(data)


class BoundedListField(serializers.ListField):
    """A ListField refusing a list longer than max_length before validating any item."""

    def to_internal_value(self, data):
        if self.max_length is not None and isinstance(data, list) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class BoundedDictField(serializers.DictField):
    """A DictField refusing more than max_items keys before validating any value."""

    def __init__(self, *args, max_items: int, **kwargs):
        self.max_items = max_items
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, dict) and len(data) > self.max_items:
            raise serializers.ValidationError(f"At most {self.max_items} keys.")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true/false: a consent choice sent as "yes" or 1 is a client bug, not a choice."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
