"""Run records of attribute analyses (and, for model segments, the model files they produce)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from segments.models import Segment


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class AttributeAnalysis(models.Model):
    """One analysis of chosen attributes against a target, as of an instant, with its results.

    Holds only aggregate statistics (no per-profile value), so erasing a visitor leaves nothing
    of theirs here to remove.
    """

    target = models.JSONField(
        help_text='An event in the window after `as_of`, e.g. {"event_type": "purchase", '
        '"window_days": 90}, or a declared trait, e.g. {"trait": "plan"}.'
    )
    attributes = models.JSONField(
        help_text='Feature names, e.g. ["recency_days", "frequency", "monetary"].'
    )
    as_of = models.DateTimeField(help_text="Features use only events up to this instant.")
    threshold = models.FloatField(
        default=0.8, help_text="Pairs with |r| above this are flagged redundant."
    )
    status = models.CharField(
        max_length=16, choices=RunState.choices, default=RunState.QUEUED, db_index=True
    )
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    profiles = models.PositiveIntegerField(default=0, help_text="Profiles read so far.")
    chunks = models.PositiveIntegerField(default=0, help_text="Chunks of profiles read so far.")
    errors = models.JSONField(default=list, blank=True)
    results = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "attribute analyses"

    def __str__(self) -> str:
        return f"analysis {self.pk} ({self.status})"


class ModelFile(models.Model):
    """A trained model of a model segment, stored with Django's default storage.

    The segment run that trained it names its version in its metrics (`model_version`); the
    active version is the one scoring the profiles. Holds no per-profile data.
    """

    segment_key = models.SlugField(max_length=100, db_index=True)
    kind = models.CharField(max_length=32)
    version = models.PositiveIntegerField()
    file = models.FileField(upload_to="models/")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["segment_key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["segment_key", "version"], name="uniq_model_version")
        ]

    def __str__(self) -> str:
        return f"{self.segment_key} v{self.version}"


class ModelSegment(Segment):
    """Cluster and propensity segments, in their own admin page with charts and "run now"."""

    class Meta:
        proxy = True
        verbose_name = "model segment"
