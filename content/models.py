"""Placements (slots on a page) and their variants (what may fill them, for whom, when)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from core.models import TimestampedModel
from core.revisions import Revision
from core.validators import validate_condition_value, validate_json_depth


class BlockType(TimestampedModel):
    """A reusable content module: a Jinja2 template and the JSON schema of the fields it reads."""

    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    template = models.TextField(help_text="Jinja2 template; reads its values as fields.<name>.")
    schema = models.JSONField(
        default=dict,
        blank=True,
        help_text='JSON Schema of the fields, e.g. {"type": "object", "properties": '
        '{"title": {"type": "string"}}, "required": ["title"]}',
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        template_refused(self.template, "template")
        try:
            validate_json_depth(self.schema)
        except ValidationError as exc:
            raise ValidationError({"schema": exc.messages}) from None


def template_refused(source: str, field: str) -> None:
    """A ValidationError on `field` naming what is wrong with a template (its line), if anything
    can be known without rendering it: syntax, nesting, a constant over the render budget."""
    from .rendering import template_check

    problem = template_check(source or "")
    if problem:
        raise ValidationError({field: f"Template error at {problem}"})


class Placement(TimestampedModel):
    key = models.SlugField(max_length=100, unique=True, help_text='Used by pages, e.g. "hero".')
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    default_variant = models.ForeignKey(
        "Variant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Served when nothing else matches and whenever anything fails.",
    )

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        # The default is served to everyone whenever nothing else matches or anything fails: it
        # must be published content, like any variant a visitor sees.
        default = self.default_variant if self.default_variant_id else None
        if default is not None and default.status != VariantStatus.LIVE:
            raise ValidationError(
                {
                    "default_variant": (
                        f'"{default.key}" is a draft: make it live (and save) before choosing '
                        "it as the default, which every visitor may be served."
                    )
                }
            )

    def revision_state(self) -> dict:
        """The editable fields a revision keeps (the key is immutable once created), plus the
        default variant's key at that time so history reads well even after it is deleted."""
        default = self.default_variant if self.default_variant_id else None
        return {
            "name": self.name,
            "description": self.description,
            "default_variant": self.default_variant_id,
            "default_variant_key": default.key if default else None,
        }


# What a placement revision restores; "default_variant_key" is only for reading history.
PLACEMENT_REVISIONED_FIELDS = ("name", "description", "default_variant")


def placement_restorable(state: dict) -> dict:
    """The part of a placement's revision state that a revert restores (to compare states)."""
    return {name: state.get(name) for name in PLACEMENT_REVISIONED_FIELDS}


class VariantStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    LIVE = "live", "Live"


class Variant(models.Model):
    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=8, choices=VariantStatus.choices, default=VariantStatus.DRAFT
    )
    priority = models.IntegerField(
        default=100, help_text="Lower is tried first; ties go to the older variant."
    )
    condition = models.JSONField(
        default=dict,
        validators=[validate_condition_value],
        blank=True,
        help_text="Targeting condition; empty matches everyone.",
    )
    block_type = models.ForeignKey(
        BlockType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="variants",
        help_text="Reusable block to fill; leave empty to write this variant's own template.",
    )
    block_fields = models.JSONField(
        default=dict, blank=True, help_text="Values for the block type's fields."
    )
    template = models.TextField(
        blank=True,
        default="",
        help_text="Own Jinja2 template (sandboxed, autoescaped); used when there is no block type.",
    )
    data = models.JSONField(
        default=dict, blank=True, help_text="Payload for apps that render themselves."
    )
    locale = models.CharField(max_length=16, blank=True, default="")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["placement", "priority", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["placement", "key"], name="uniq_placement_variant_key")
        ]

    def __str__(self) -> str:
        return f"{self.placement.key}/{self.key}" if self.placement_id else self.key

    def clean(self) -> None:
        super().clean()
        template_refused(self.template, "template")
        for name in ("data", "block_fields"):
            try:
                validate_json_depth(getattr(self, name))
            except ValidationError as exc:
                raise ValidationError({name: exc.messages}) from None
        if (
            self.pk is not None
            and self.status != VariantStatus.LIVE
            and Placement.objects.filter(default_variant_id=self.pk).exists()
        ):
            raise ValidationError(
                {
                    "status": (
                        "This variant is its placement's default, served whenever nothing else "
                        "matches or anything fails: choose another default before making it a "
                        "draft."
                    )
                }
            )

    def render_source(self) -> str:
        """The template that renders this variant: its block type's, else its own."""
        return self.block_type.template if self.block_type_id else self.template

    def revision_state(self) -> dict:
        return {name: getattr(self, name) for name in REVISIONED_FIELDS} | {
            "block_type": self.block_type_id,
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
        }


REVISIONED_FIELDS = (
    "name",
    "status",
    "priority",
    "condition",
    "block_fields",
    "template",
    "data",
    "locale",
)


VARIANT_RESTORED_KEYS = (*REVISIONED_FIELDS, "block_type", "starts_at", "ends_at")


def variant_restorable(state: dict) -> dict:
    """The part of a variant's revision state that a revert restores (to compare states)."""
    return {name: state.get(name) for name in VARIANT_RESTORED_KEYS}


class VariantRevision(Revision):
    """A saved state of a variant, written on every editor save, so any change can be reverted."""

    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="revisions")
    state = models.JSONField(help_text="The variant's editable fields at that time.")

    subject_field = "variant"

    class Meta(Revision.Meta):
        pass


class PlacementRevision(Revision):
    """A saved state of a placement, written on every editor change, so it can be reverted."""

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="revisions")
    state = models.JSONField(help_text="The placement's editable fields at that time.")

    subject_field = "placement"

    class Meta(Revision.Meta):
        pass
