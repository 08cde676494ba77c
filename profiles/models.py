"""Profiles (pseudonymous visitors), their events and consent history, and the audit log.

Moved out of segments (issue #12) with their tables: each model keeps its `segments_*` table
(`db_table`), the move is a state-only migration (profiles 0001, segments 0012).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Profile(models.Model):
    """A visitor, known only by a keyed hash of the id the site gave it."""

    key = models.CharField(
        max_length=64, unique=True, help_text="HMAC-SHA256 of the visitor id (never the raw id)."
    )
    user_key = models.CharField(
        max_length=64, blank=True, default="", db_index=True, help_text="HMAC of the user id."
    )
    traits = models.JSONField(default=dict, blank=True)
    aggregates = models.JSONField(
        default=dict, blank=True, help_text="Behaviour aggregates kept current by ingestion."
    )
    consent = models.JSONField(
        default=dict, blank=True, help_text="Current consent per purpose (history: ConsentRecord)."
    )
    scores = models.JSONField(
        default=dict,
        blank=True,
        help_text='Model scores by namespace, e.g. {"rfm": {"r": 5, "f": 4, "m": 3, ...}}; '
        "conditions read them as profile.rfm.r etc.",
    )
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "segments_profile"  # its table in segments, kept
        ordering = ["-last_seen"]
        # The privacy officer's actions (admin actions and API endpoints), apart from viewing.
        permissions = [
            ("export_profile", "Can export a visitor's data"),
            ("erase_profile", "Can erase a visitor from every store"),
        ]

    def __str__(self) -> str:
        return f"profile {self.key[:12]}…"


class EventType(models.TextChoices):
    PAGE_VIEW = "page_view", "Page view"
    PRODUCT_VIEW = "product_view", "Product view"
    ADD_TO_CART = "add_to_cart", "Add to cart"
    REMOVE_FROM_CART = "remove_from_cart", "Remove from cart"
    PURCHASE = "purchase", "Purchase"
    SEARCH = "search", "Search"
    CUSTOM = "custom", "Custom"


class Event(models.Model):
    event_id = models.UUIDField(unique=True, default=uuid.uuid4, help_text="Idempotency key.")
    # No index of its own: the (profile, occurred_at) index below starts with it and serves every
    # lookup by profile; a second one only slowed each insert.
    # No database constraint either: checked per row at commit it cost PostgreSQL a third of
    # an event's COPY. Ingestion locks each batch's profiles once instead (FOR KEY SHARE, the
    # lock the check took), and the two paths that delete profiles, erasure and identify's
    # merge, lock them FOR UPDATE before moving or deleting their events, so no event is left
    # pointing at a deleted profile. Deletes still cascade (Django's collector).
    profile = models.ForeignKey(
        Profile,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    type = models.CharField(max_length=32, choices=EventType.choices, db_index=True)
    name = models.CharField(max_length=200, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    context = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(db_index=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "segments_event"  # its table in segments, kept
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["profile", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.type} {self.name}".strip()


class ConsentRecord(models.Model):
    """Append-only history of consent choices; the profile keeps the current state."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="consent_history")
    purposes = models.JSONField(help_text='e.g. {"analytics": true, "personalization": false}')
    source = models.CharField(max_length=64, blank=True, default="")
    policy_version = models.CharField(max_length=32, blank=True, default="")
    gpc = models.BooleanField(default=False, help_text="Sec-GPC: 1 was present.")
    recorded_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "segments_consentrecord"  # its table in segments, kept
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"consent {self.recorded_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Consent records are append-only.")
        super().save(*args, **kwargs)


class AuditAction(models.TextChoices):
    EXPORT = "export", "Export"
    ERASE = "erase", "Erase"
    CONSENT_CHANGE = "consent_change", "Consent change"
    KEY_CHANGE = "key_change", "API key change"
    RETENTION_PURGE = "retention_purge", "Retention purge"
    CONTENT_CHANGE = "content_change", "Content change"
    SEGMENT_CHANGE = "segment_change", "Segment change"
    EXPERIMENT_CHANGE = "experiment_change", "Experiment change"


class AuditQuerySet(models.QuerySet):
    """Bulk update and delete are refused: the log is append-only.

    The one exception is `redact_subject`, which erasure uses so that earlier entries no longer
    point at an erased visitor's pseudonymous key.
    """

    def update(self, **kwargs):
        raise ValueError("Audit entries are append-only.")

    def delete(self):
        raise ValueError("Audit entries are append-only.")

    def redact_subject(self, subject: str) -> int:
        # QuerySet.update on purpose: this class's own update() refuses every other change.
        return models.QuerySet.update(self.filter(subject=subject), subject=AuditEntry.REDACTED)


class AuditEntry(models.Model):
    """Who did what to which pseudonymous profile; never a raw visitor id or other personal data."""

    REDACTED = "-"

    action = models.CharField(max_length=32, choices=AuditAction.choices, db_index=True)
    actor = models.CharField(max_length=150, help_text='Username, or "api" for public endpoints.')
    subject = models.CharField(
        max_length=64,
        db_index=True,
        default=REDACTED,
        help_text='Pseudonymous profile key, or "-" (none, or erased since).',
    )
    details = models.JSONField(default=dict, blank=True, help_text="Counts and choices only.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        db_table = "segments_auditentry"  # its table in segments, kept
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} by {self.actor} at {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit entries are append-only.")
