"""The management API's preview action: render a variant (draft or live) for a typed context or a
stored visitor, without saving or logging anything."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import ApiKeyPolicy, ModelPermissionByRole
from content.api.views import ErrorSerializer
from content.models import Variant
from core.serializers import StrictSerializer
from personalization.context import DEVICES, build_request_context
from personalization.preview import preview_profile, variant_preview_run


class _ObjectField(serializers.JSONField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class PreviewContextSerializer(StrictSerializer):
    url = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    device = serializers.ChoiceField(
        choices=["", *DEVICES], required=False, default="", help_text="Empty: from User-Agent."
    )
    locale = serializers.CharField(max_length=35, required=False, allow_blank=True, default="")
    attributes = _ObjectField(
        required=False, default=dict, help_text="Custom request attributes (request.attributes.*)."
    )


class PreviewRequestSerializer(StrictSerializer):
    visitor = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="A visitor id whose stored profile to use (looked up by its pseudonym).",
    )
    profile = _ObjectField(
        required=False,
        allow_null=True,
        default=None,
        help_text='Or a typed profile: {"traits": {...}, "aggregates": {...}, "segments": [...]}.',
    )
    context = PreviewContextSerializer(required=False)


class PreviewResponseSerializer(serializers.Serializer):
    variant = serializers.CharField()
    profile_source = serializers.CharField()
    condition = serializers.CharField(help_text="The variant's condition in words.")
    matches = serializers.BooleanField(help_text="Whether the condition matches this context.")
    html = serializers.CharField(help_text="The variant rendered for this context.")
    render_error = serializers.CharField(allow_blank=True)
    data = serializers.DictField(help_text="What decide's `data` would carry for this variant.")
    decision = serializers.DictField(
        help_text="What decide serves now for the placement (live variants only), explained."
    )


class VariantPreviewView(APIView):
    permission_classes = [ApiKeyPolicy, ModelPermissionByRole]
    permission_model = Variant
    permission_action = "view"
    publishable_key_allowed = False

    @extend_schema(
        summary="Preview a variant for a context or a stored visitor (nothing is saved)",
        tags=["variants"],
        request=PreviewRequestSerializer,
        responses={
            200: PreviewResponseSerializer,
            400: ErrorSerializer,
            403: ErrorSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such variant."),
        },
        examples=[
            OpenApiExample(
                "A returning visitor on mobile",
                value={
                    "profile": {"aggregates": {"purchase_count": 2}},
                    "context": {"url": "https://shop.example/", "device": "mobile"},
                },
                request_only=True,
            ),
            OpenApiExample(
                "The answer",
                value={
                    "variant": "hero/spring-sale",
                    "profile_source": "typed profile",
                    "condition": "profile.aggregates.purchase_count is at least 1",
                    "matches": True,
                    "html": "<h2>Spring sale</h2>",
                    "render_error": "",
                    "data": {"title": "Spring sale", "campaign": "spring"},
                    "decision": {"variant": "default", "reason": "default", "html": "…"},
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request, variant_id: int):
        variant = get_object_or_404(
            Variant.objects.select_related("placement", "block_type"), pk=variant_id
        )
        serializer = PreviewRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        ctx = body.get("context") or {}
        profile, source = preview_profile(visitor=body["visitor"], typed=body["profile"])
        request_context = build_request_context(
            url=ctx.get("url", ""),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            device=ctx.get("device", ""),
            locale=ctx.get("locale", ""),
            attributes=ctx.get("attributes") or {},
        )
        result = variant_preview_run(
            variant=variant,
            profile=profile,
            profile_source=source,
            request_context=request_context,
            visitor=body["visitor"] or None,
        )
        return Response(
            {
                "variant": str(variant),
                "profile_source": result.profile_source,
                "condition": result.condition_text,
                "matches": result.matches,
                "html": result.html,
                "render_error": result.render_error,
                "data": result.data,
                "decision": result.decision.as_dict(),
            }
        )
