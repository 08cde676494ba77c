"""Placements (slots on a page) and their variants (what may fill them, for whom, when)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from personalization.validators import validate_condition_value


class Placement(models.Model):
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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


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
    template = models.TextField(
        blank=True, default="", help_text="Jinja2 template (sandboxed, autoescaped)."
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
