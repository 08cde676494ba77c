"""Validation of consent choices and of the visitor id in the privacy endpoints' URLs."""

from __future__ import annotations

from rest_framework import serializers

from core.serializers import StrictBooleanField, StrictSerializer
from core.validators import validate_visitor_id


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

    visitor = serializers.CharField(max_length=200, validators=[validate_visitor_id])
    purposes = ConsentPurposesSerializer()
    source = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    policy_version = serializers.CharField(
        max_length=32, required=False, allow_blank=True, default=""
    )


class VisitorPathSerializer(StrictSerializer):
    """The visitor id taken from the URL of the privacy endpoints."""

    visitor = serializers.CharField(max_length=200, validators=[validate_visitor_id])
