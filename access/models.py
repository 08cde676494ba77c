"""API keys: only a digest of each key is stored; the full key is shown once at creation."""

from __future__ import annotations

from django.db import models


class ApiKeyKind(models.TextChoices):
    PUBLISHABLE = "publishable", "Publishable (browser)"
    SECRET = "secret", "Secret (server)"


class ApiKey(models.Model):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ApiKeyKind.choices)
    prefix = models.CharField(
        max_length=16, db_index=True, editable=False, help_text="First characters, to recognise it."
    )
    hashed_key = models.CharField(
        max_length=64, unique=True, editable=False, help_text="SHA-256 of the key (hex)."
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text='Publishable keys: browser origins allowed, e.g. ["https://shop.example"].',
    )
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    role = models.ForeignKey(
        "auth.Group",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Secret keys: the role whose permissions the management API grants this key "
        "(Editor, Analyst...). Empty: every permission, like the admin account.",
    )
    is_active = models.BooleanField(default=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_publishable(self) -> bool:
        return self.kind == ApiKeyKind.PUBLISHABLE

    @property
    def is_secret(self) -> bool:
        return self.kind == ApiKeyKind.SECRET
