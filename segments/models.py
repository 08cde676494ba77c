"""Profiles (pseudonymous visitors), their events and consent history, and segments."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from core.models import TimestampedModel
from core.revisions import Revision
from core.validators import validate_condition_value

from .kinds import kind_choices


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
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["profile", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.type} {self.name}".strip()


class PendingAggregate(models.Model):
    """An event stored but not yet folded into its profile's aggregates (ingestion's stage 2).

    Stage 1 writes the event and this row in one transaction; stage 2 deletes the row in the
    transaction that folds the event in, so each event is counted exactly once whatever crashes.
    The row carries what the fold needs (a copy of the event's fields), so stage 2 reads only
    this table. No database constraint to the event (a COPY of thousands of rows would check
    each); deleting an event through the ORM deletes its row (CASCADE, done by Django).
    """

    event = models.OneToOneField(
        Event, on_delete=models.CASCADE, db_constraint=False, primary_key=True, related_name="+"
    )
    # The profile the event was stored for; a merge that moves the event deletes this row.
    profile_id = models.BigIntegerField()
    event_uuid = models.UUIDField()
    type = models.CharField(max_length=32)
    # The event's occurred_at as microseconds since the Unix epoch: an integer reads back far
    # faster than a timestamp, and stage 2 reads thousands per run.
    occurred_us = models.BigIntegerField()
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    category = models.CharField(max_length=100, null=True)

    def __str__(self) -> str:
        return f"pending {self.event_id}"


class ConsentRecord(models.Model):
    """Append-only history of consent choices; the profile keeps the current state."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="consent_history")
    purposes = models.JSONField(help_text='e.g. {"analytics": true, "personalization": false}')
    source = models.CharField(max_length=64, blank=True, default="")
    policy_version = models.CharField(max_length=32, blank=True, default="")
    gpc = models.BooleanField(default=False, help_text="Sec-GPC: 1 was present.")
    recorded_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"consent {self.recorded_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Consent records are append-only.")
        super().save(*args, **kwargs)


class SegmentKind(models.TextChoices):
    """The kinds this app registers (segments/kinds/); other apps may register more."""

    CONDITION = "condition", "Condition"
    RFM = "rfm", "RFM score"
    STATIC = "static", "Static list"
    DEFAULT = "default", "Default (unclassified visitors)"


class Segment(TimestampedModel):
    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    # Choices: the registered kinds (segments.kinds), so a kind is offered only once it exists.
    kind = models.CharField(max_length=32, choices=kind_choices, default=SegmentKind.CONDITION)
    condition = models.JSONField(
        default=dict,
        validators=[validate_condition_value],
        blank=True,
        help_text='Condition over the profile, e.g. {"profile.traits.plan": "pro"}',
    )
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text='Kind-specific settings, e.g. RFM: {"segments": ["champions", "loyal"]}.',
    )
    is_active = models.BooleanField(default=True)
    member_count = models.PositiveIntegerField(default=0, editable=False)
    computed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="memberships")
    since = models.DateTimeField(default=timezone.now)
    score = models.FloatField(null=True, blank=True, help_text="Kind-specific score, if any.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "profile"], name="uniq_segment_profile")
        ]
        indexes = [models.Index(fields=["profile", "segment"])]

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.profile_id}"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    # Membership swapped in; cached documents still being rewritten.
    APPLIED = "applied", "Applied"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    # Its process died (its lease expired); the membership it would have written never was.
    ABANDONED = "abandoned", "Abandoned"


class SegmentRun(models.Model):
    """One recompute of one segment, with its numbers."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING, db_index=True
    )
    trigger = models.CharField(max_length=32, default="schedule", help_text="Who asked for it.")
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    profiles_total = models.PositiveIntegerField(default=0, help_text="Profiles to scan.")
    profiles_scanned = models.PositiveIntegerField(default=0)
    entered = models.PositiveIntegerField(default=0)
    exited = models.PositiveIntegerField(default=0)
    size = models.PositiveIntegerField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["segment", "-started_at"])]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.segment_id} ({self.status})"


class MembershipEvent(models.TextChoices):
    ENTERED = "entered", "Entered"
    EXITED = "exited", "Exited"


class SegmentMembershipChange(models.Model):
    """History: a profile entered or left a segment (by a run, or in real time by ingestion)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="changes")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=8, choices=MembershipEvent.choices)
    at = models.DateTimeField(default=timezone.now)
    run = models.ForeignKey(
        SegmentRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["segment", "at"]),
            models.Index(fields=["profile", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} {self.event} {self.segment_id}"


class StaticIdType(models.TextChoices):
    VISITOR = "visitor", "Visitor id"
    USER = "user", "User id"


class StaticListEntry(models.Model):
    """One id of a static segment's list, pseudonymised (keyed HMAC) before it is stored."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="static_entries")
    id_type = models.CharField(max_length=8, choices=StaticIdType.choices)
    key = models.CharField(max_length=64, help_text="HMAC of the id (never the raw id).")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "id_type", "key"], name="uniq_static_entry")
        ]
        indexes = [models.Index(fields=["key"])]
        verbose_name_plural = "static list entries"

    def __str__(self) -> str:
        return f"{self.id_type} {self.key[:12]}…"


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


class SegmentTrigger(models.Model):
    """A webhook called when profiles enter and/or exit a segment."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="triggers")
    name = models.CharField(max_length=200, blank=True, default="")
    url = models.URLField(max_length=2000, help_text="HTTPS endpoint receiving the JSON POSTs.")
    on_enter = models.BooleanField(default=True)
    on_exit = models.BooleanField(default=False)
    secret = models.CharField(
        max_length=64,
        editable=False,
        help_text="Signing key of X-Mosaic-Signature (HMAC-SHA256), generated.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["segment", "pk"]

    def __str__(self) -> str:
        return self.name or self.url[:60]

    def save(self, *args, **kwargs) -> None:
        if not self.secret:
            import secrets

            self.secret = secrets.token_hex(32)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .webhooks import webhook_url_validate

        if not (self.on_enter or self.on_exit):
            raise ValidationError({"on_enter": "Choose entering, exiting or both."})
        try:
            webhook_url_validate(self.url or "")
        except ValidationError as exc:
            raise ValidationError({"url": exc.messages}) from None


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One webhook call (a profile entering or exiting), with its attempts: the delivery log."""

    trigger = models.ForeignKey(SegmentTrigger, on_delete=models.CASCADE, related_name="deliveries")
    # Erasure deletes the visitor's deliveries with the profile (the body holds its key).
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=8, choices=MembershipEvent.choices)
    body = models.TextField(help_text="The JSON sent (the same bytes at every attempt).")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Set while an attempt is under way (claimed atomically): a second task for the same
    # delivery (a sweep's, a redelivered one) skips it instead of sending it twice.
    sending_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.trigger} ({self.status})"


class SegmentKpi(models.Model):
    """One segment's figures for one UTC day (kept by a beat task: segments.kpis)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="kpis")
    day = models.DateField()
    size = models.PositiveIntegerField(help_text="Members at the end of the day (or now).")
    entered = models.PositiveIntegerField(default=0)
    exited = models.PositiveIntegerField(default=0)
    purchasers = models.PositiveIntegerField(default=0, help_text="Members who bought that day.")
    orders = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    conversion_rate = models.FloatField(null=True, blank=True, help_text="Purchasers / members.")
    revenue_per_member = models.FloatField(null=True, blank=True)
    average_order_value = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["segment", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["segment", "day"], name="uniq_segment_kpi_day")
        ]
        verbose_name = "segment KPI"

    def __str__(self) -> str:
        return f"{self.segment_id} {self.day}"


class SegmentRevision(Revision):
    """A saved state of a segment (core/revisions.py), written by segments.segment_services on
    every change from the admin or the API, so that any change can be seen and reverted."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="revisions")
    state = models.JSONField(help_text="The segment's editable fields at that time.")

    subject_field = "segment"

    class Meta(Revision.Meta):
        pass
