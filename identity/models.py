"""Trait schema and visitor aliases (visitor ids whose profile was merged into another)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from segments.models import Profile


class TraitType(models.TextChoices):
    STRING = "string", "String"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "Boolean"
    DATE = "date", "Date (ISO 8601)"
    LIST = "list", "List"


class TraitDefinition(models.Model):
    name = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=16, choices=TraitType.choices)
    description = models.TextField(blank=True, default="")
    shareable = models.BooleanField(
        default=False,
        help_text="May be sent to third parties in segment webhooks (off: never leaves Mosaic).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class VisitorAlias(models.Model):
    """A merged-away visitor's pseudonymous key, pointing at the profile that absorbed it."""

    alias_key = models.CharField(
        max_length=64, unique=True, help_text="HMAC of the merged-away visitor id."
    )
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "visitor aliases"

    def __str__(self) -> str:
        return f"{self.alias_key[:12]}… → {self.profile_id}"
