"""Trait schema and visitor aliases (visitor ids whose profile was merged into another)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from profiles.models import Profile


class TraitType(models.TextChoices):
    STRING = "string", "String"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "Boolean"
    DATE = "date", "Date (ISO 8601)"
    LIST = "list", "List"


class TraitDefinition(models.Model):
    """A declared trait: its type, and optional validation rules checked at ingestion (a value
    breaking one is refused, naming the trait; see identity/traits.py and docs/events.md).
    """

    name = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=16, choices=TraitType.choices)
    description = models.TextField(blank=True, default="")
    min_value = models.FloatField(
        null=True, blank=True, help_text="Number traits: smallest value accepted."
    )
    max_value = models.FloatField(
        null=True, blank=True, help_text="Number traits: largest value accepted."
    )
    allowed_values = models.JSONField(
        default=list,
        blank=True,
        help_text='String, number and list traits: the only values accepted, e.g. ["free", "pro"]'
        " (a list trait: each item). Empty: any.",
    )
    pattern = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="String and list traits: a regular expression the whole value (each item) must "
        "match, e.g. [A-Z]{2}. Linear-time (RE2): no lookarounds or backreferences.",
    )
    shareable = models.BooleanField(
        default=False,
        help_text="May be sent to third parties in segment webhooks (off: never leaves Mosaic).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"

    def clean(self) -> None:
        from .traits import trait_rules_errors

        errors = trait_rules_errors(
            kind=self.type,
            min_value=self.min_value,
            max_value=self.max_value,
            allowed_values=self.allowed_values,
            pattern=self.pattern,
        )
        if errors:
            raise ValidationError(errors)


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
