"""Serializers of the segment management API (/api/v1/segments...)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.serializers import StrictSerializer
from core.validators import validate_condition_value

from ..guardrails import segment_warnings
from ..kinds import ConfigError, get_kind, kind_choices
from ..models import Segment, SegmentKind, SegmentRun


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Cart abandoners (condition)",
            value={
                "key": "cart-abandoners",
                "name": "Cart abandoners",
                "kind": "condition",
                "condition": {
                    "profile.aggregates.cart_value": {"$gt": 0},
                    "profile.aggregates.purchased_since_last_add_to_cart": False,
                },
            },
            request_only=True,
        ),
        OpenApiExample(
            "Champions and loyal (RFM)",
            value={
                "key": "best-customers",
                "name": "Best customers",
                "kind": "rfm",
                "config": {"segments": ["champions", "loyal"]},
            },
            request_only=True,
        ),
        OpenApiExample(
            "Uploaded list (static)",
            value={"key": "vip-list", "name": "VIP list", "kind": "static"},
            request_only=True,
        ),
        # Model segments (issue #16): the kinds and their settings are in analysis/kinds.py.
        OpenApiExample(
            "Buys in the next 90 days (propensity)",
            value={
                "key": "buy-90d",
                "name": "Likely to buy in 90 days",
                "kind": "propensity",
                "config": {
                    "target": {"event_type": "purchase", "window_days": 90},
                    "model": "gradient_boosting",
                    "features": ["recency_days", "frequency", "monetary", "tenure_days"],
                    "validation": "time",
                    "membership": {"top_share": 0.2},
                    "retrain_hours": 24,
                },
            },
            request_only=True,
        ),
        OpenApiExample(
            "RFM groups (cluster)",
            value={
                "key": "rfm-groups",
                "name": "RFM groups",
                "kind": "cluster",
                "config": {
                    "features": ["purchase_recency_days", "frequency", "monetary"],
                    "method": "kmeans",
                    "scaling": "standard",
                    "k_range": [2, 10],
                },
            },
            request_only=True,
        ),
    ]
)
class SegmentSerializer(StrictSerializer, serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=[], default=SegmentKind.CONDITION)
    condition = serializers.JSONField(required=False)
    config = serializers.JSONField(required=False)
    last_run = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = [
            "key",
            "name",
            "description",
            "kind",
            "condition",
            "config",
            "is_active",
            "member_count",
            "computed_at",
            "last_run",
            "warnings",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["member_count", "computed_at", "created_at", "updated_at"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only the kinds registered now (another app may register more).
        self.fields["kind"].choices = kind_choices()

    def get_last_run(self, segment: Segment) -> dict[str, Any] | None:
        run = segment.runs.first()
        return SegmentRunSerializer(run).data if run else None

    def get_warnings(self, segment: Segment) -> list[dict[str, str]]:
        return segment_warnings(segment=segment, overloaded=self.context.get("overloaded"))

    def validate_key(self, value: str) -> str:
        if self.instance is not None and value != self.instance.key:
            raise serializers.ValidationError("The key of a segment cannot change.")
        return value

    def validate_condition(self, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        try:
            validate_condition_value(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind_key = attrs.get("kind", getattr(self.instance, "kind", SegmentKind.CONDITION))
        kind = get_kind(kind_key)
        condition = attrs.get("condition", getattr(self.instance, "condition", {}) or {})
        if kind_key != SegmentKind.CONDITION and condition:
            raise serializers.ValidationError(
                {"condition": [f"Only condition segments have a condition, not {kind_key!r}."]}
            )
        config = attrs.get("config", getattr(self.instance, "config", {}) or {})
        if "kind" in attrs and self.instance is not None and kind_key != self.instance.kind:
            config = attrs.get("config", {})
        try:
            attrs["config"] = kind.clean_config(config if config is not None else {})
        except ConfigError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from None
        return attrs


class SegmentRunSerializer(serializers.ModelSerializer):
    segment = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = SegmentRun
        fields = [
            "id",
            "segment",
            "kind",
            "status",
            "trigger",
            "started_at",
            "finished_at",
            "duration_ms",
            "profiles_total",
            "profiles_scanned",
            "entered",
            "exited",
            "size",
            "errors",
            "metrics",
        ]
        read_only_fields = fields


class PageSerializer(StrictSerializer):
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    export = serializers.ChoiceField(choices=["csv"], required=False)


class MemberSerializer(serializers.Serializer):
    profile = serializers.CharField(help_text="Pseudonymous profile key.")
    since = serializers.DateTimeField()
    score = serializers.FloatField(allow_null=True)


@extend_schema_serializer(
    examples=[
        OpenApiExample("Add visitors", value={"visitor_ids": ["v-123", "v-456"]}),
        OpenApiExample("Replace with users", value={"user_ids": ["u-1"], "replace": True}),
    ]
)
class StaticIdsSerializer(StrictSerializer):
    visitor_ids = serializers.ListField(child=serializers.JSONField(), required=False)
    user_ids = serializers.ListField(child=serializers.JSONField(), required=False)
    replace = serializers.BooleanField(default=False)
    file = serializers.FileField(required=False, help_text="CSV of ids (multipart upload).")
    id_type = serializers.ChoiceField(choices=["visitor", "user"], required=False)

    def validate_file(self, value):
        # A list at its maximum (MOSAIC_STATIC_LIST_MAX_IDS ids of at most 200 characters) fits;
        # anything larger is refused before it is read.
        limit = settings.MOSAIC_STATIC_LIST_MAX_IDS * 202
        if value.size > limit:
            raise serializers.ValidationError(f"Larger than {limit} bytes.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("visitor_ids", "user_ids", "file") if name in attrs]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"body": ["Exactly one of visitor_ids, user_ids or file."]}
            )
        return attrs
