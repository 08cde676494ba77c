"""Shapes of the content management API (block types, placements, variants) and their OpenAPI
documentation. They check types and sizes only: what may be saved is decided by content.services,
the same functions the admin's forms call."""

from __future__ import annotations

from rest_framework import serializers

from core.serializers import StrictSerializer
from segments.catalogue import attribute_catalogue

from ..models import BlockType, Placement, Variant, VariantStatus
from ..services import TEMPLATE_MAX_LENGTH, variant_warnings

KEY_FIELD = {"max_length": 100}
PRIORITY_BOUND = 1_000_000


class _ObjectField(serializers.JSONField):
    """A JSON object (not a list, number or string)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class BlockTypeSerializer(StrictSerializer):
    key = serializers.SlugField(**KEY_FIELD)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=10_000, allow_blank=True, required=False, default=""
    )
    template = serializers.CharField(
        max_length=TEMPLATE_MAX_LENGTH,
        trim_whitespace=False,
        help_text="Jinja2 template (sandboxed, autoescaped); reads its values as fields.<name>.",
    )
    schema = _ObjectField(
        required=False,
        default=dict,
        help_text='JSON Schema of the fields: {"type": "object", "properties": {...}}.',
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class VariantSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    key = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)


class PlacementSerializer(StrictSerializer):
    key = serializers.SlugField(
        **KEY_FIELD, help_text='Used by pages, e.g. "hero"; fixed once created.'
    )
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=10_000, allow_blank=True, required=False, default=""
    )
    default_variant = serializers.SlugField(
        **KEY_FIELD,
        allow_null=True,
        required=False,
        default=None,
        help_text="Key of one of this placement's live variants: served when nothing else "
        "matches and whenever anything fails.",
    )
    variants = VariantSummarySerializer(many=True, read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance: Placement):
        default = instance.default_variant if instance.default_variant_id else None
        return {
            "key": instance.key,
            "name": instance.name,
            "description": instance.description,
            "default_variant": default.key if default else None,
            "variants": [
                {"id": v.pk, "key": v.key, "status": v.status} for v in instance.variants.all()
            ],
            "created_at": serializers.DateTimeField().to_representation(instance.created_at),
            "updated_at": serializers.DateTimeField().to_representation(instance.updated_at),
        }


class VariantSerializer(StrictSerializer):
    id = serializers.IntegerField(read_only=True)
    placement = serializers.SlugField(**KEY_FIELD, help_text="The placement's key.")
    key = serializers.SlugField(**KEY_FIELD)
    name = serializers.CharField(max_length=200)
    status = serializers.ChoiceField(
        choices=VariantStatus.choices,
        required=False,
        default=VariantStatus.DRAFT,
        help_text="draft: never served; live: served to the visitors its condition matches.",
    )
    priority = serializers.IntegerField(
        min_value=-PRIORITY_BOUND,
        max_value=PRIORITY_BOUND,
        required=False,
        default=100,
        help_text="Lower is tried first; ties go to the older variant.",
    )
    condition = _ObjectField(
        required=False, default=dict, help_text="Targeting condition; {} matches everyone."
    )
    block_type = serializers.SlugField(
        **KEY_FIELD,
        allow_null=True,
        required=False,
        default=None,
        help_text="Key of the block type to fill, or null for the variant's own template.",
    )
    block_fields = _ObjectField(
        required=False, default=dict, help_text="Values for the block type's fields."
    )
    template = serializers.CharField(
        max_length=TEMPLATE_MAX_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        required=False,
        default="",
        help_text="Own Jinja2 template, used when there is no block type.",
    )
    data = _ObjectField(
        required=False, default=dict, help_text="Payload for apps that render themselves."
    )
    locale = serializers.CharField(max_length=16, allow_blank=True, required=False, default="")
    starts_at = serializers.DateTimeField(allow_null=True, required=False, default=None)
    ends_at = serializers.DateTimeField(allow_null=True, required=False, default=None)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    warnings = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="What the attribute catalogue says of the condition (a path no context has, "
        "a value of the wrong type): saved anyway, but it probably never matches.",
    )

    def validate_placement(self, value: str) -> Placement:
        placement = Placement.objects.filter(key=value).first()
        if placement is None:
            raise serializers.ValidationError(f'No placement with the key "{value}".')
        return placement

    def validate_block_type(self, value: str | None) -> BlockType | None:
        if value is None:
            return None
        block_type = BlockType.objects.filter(key=value).first()
        if block_type is None:
            raise serializers.ValidationError(f'No block type with the key "{value}".')
        return block_type

    def to_representation(self, instance: Variant):
        data = super().to_representation(instance)
        data["placement"] = instance.placement.key
        data["block_type"] = instance.block_type.key if instance.block_type_id else None
        if "catalogue" not in self.context:  # once per answer, however many variants it lists
            self.context["catalogue"] = attribute_catalogue()
        data["warnings"] = variant_warnings(variant=instance, catalogue=self.context["catalogue"])
        return data
