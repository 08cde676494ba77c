"""API shapes of recommendations: catalog items (also the CSV import's row validation), runs."""

from __future__ import annotations

import json

from rest_framework import serializers

from .models import Item, TrainingRun, sku_validator

MAX_ATTRIBUTES_BYTES = 8192


class ItemSerializer(serializers.ModelSerializer):
    """A catalog item; unknown fields are refused by name."""

    price = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        coerce_to_string=False,
    )

    class Meta:
        model = Item
        fields = [
            "sku",
            "title",
            "category",
            "price",
            "url",
            "image_url",
            "in_stock",
            "attributes",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        text = json.dumps(value, ensure_ascii=False)
        if len(text.encode()) > MAX_ATTRIBUTES_BYTES:
            raise serializers.ValidationError(f"At most {MAX_ATTRIBUTES_BYTES} bytes of JSON.")
        if "\\u0000" in text:
            raise serializers.ValidationError("Must not contain NUL characters (\\u0000).")
        return value

    def validate(self, attrs):
        for name in ("title", "category", "sku"):
            if "\x00" in str(attrs.get(name, "")):
                raise serializers.ValidationError({name: ["Must not contain NUL characters."]})
        return attrs


class ItemRowSerializer(ItemSerializer):
    """A catalog CSV row: like the API, but an existing sku is an update, not an error."""

    sku = serializers.CharField(max_length=64, validators=[sku_validator])


class TrainingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "trigger",
            "started_at",
            "finished_at",
            "interactions",
            "users",
            "items",
            "evaluated_users",
            "k",
            "params",
            "precision",
            "recall",
            "map",
            "ndcg",
            "coverage",
            "baseline_precision",
            "baseline_recall",
            "baseline_map",
            "baseline_ndcg",
            "baseline_coverage",
            "beats_baseline",
            "visitors_written",
            "seconds",
            "note",
        ]
        read_only_fields = fields


class TrainRequestSerializer(serializers.Serializer):
    """POST body of the train endpoint (empty: train now)."""

    def to_internal_value(self, data):
        if isinstance(data, dict) and data:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(data)})
        return super().to_internal_value(data)
