"""Catalog items, training runs, and the precomputed outputs of the active run."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

SKU_PATTERN = r"^[-A-Za-z0-9_.:]+$"
sku_validator = RegexValidator(SKU_PATTERN, "Letters, digits and - _ . : only.")


class Item(models.Model):
    """A product events refer to by ``properties.sku``."""

    sku = models.CharField(max_length=64, unique=True, validators=[sku_validator])
    title = models.CharField(max_length=300)
    category = models.CharField(max_length=100, blank=True, default="", db_index=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    url = models.URLField(max_length=2000, blank=True, default="")
    image_url = models.URLField(max_length=2000, blank=True, default="")
    in_stock = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.title}"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    ACTIVE = "active", "Active (serving)"
    FLAGGED = "flagged", "Flagged (did not beat popularity)"
    SUPERSEDED = "superseded", "Superseded"
    FAILED = "failed", "Failed"
    EMPTY = "empty", "Too little data"


class TrainingRun(models.Model):
    """One training: its data, chosen parameters, test figures and the popularity baseline's."""

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    trigger = models.CharField(max_length=16, default="manual", help_text="manual or schedule")
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    interactions = models.PositiveIntegerField(default=0)
    users = models.PositiveIntegerField(default=0)
    items = models.PositiveIntegerField(default=0)
    evaluated_users = models.PositiveIntegerField(default=0)
    k = models.PositiveSmallIntegerField(default=10)
    params = models.JSONField(default=dict, blank=True, help_text="Chosen hyperparameters.")
    protocol = models.JSONField(default=dict, blank=True)
    precision = models.FloatField(null=True, blank=True)
    recall = models.FloatField(null=True, blank=True)
    map = models.FloatField(null=True, blank=True)
    ndcg = models.FloatField(null=True, blank=True)
    coverage = models.FloatField(null=True, blank=True)
    baseline_precision = models.FloatField(null=True, blank=True)
    baseline_recall = models.FloatField(null=True, blank=True)
    baseline_map = models.FloatField(null=True, blank=True)
    baseline_ndcg = models.FloatField(null=True, blank=True)
    baseline_coverage = models.FloatField(null=True, blank=True)
    beats_baseline = models.BooleanField(null=True)
    popular = models.JSONField(
        default=dict, blank=True, help_text='{"global": [sku...], "by_category": {cat: [sku...]}}'
    )
    visitors_written = models.PositiveIntegerField(default=0)
    # The item side of the activated model, to fold in visitors whose behaviour changed since
    # (float32, items x factors, row order = item_skus).
    item_factors = models.BinaryField(null=True, blank=True, editable=False)
    item_factors_shape = models.JSONField(default=list, blank=True, editable=False)
    item_skus = models.JSONField(default=list, blank=True, editable=False)
    refreshed_until = models.DateTimeField(
        null=True, blank=True, help_text="Events received up to here are in the lists."
    )
    visitors_refreshed = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"


class VisitorRecommendation(models.Model):
    """A visitor's precomputed top-N (skus) from a run; copied into the profile document."""

    profile = models.OneToOneField(
        "profiles.Profile", on_delete=models.CASCADE, related_name="recommendation"
    )
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="+")
    items = models.JSONField(default=list)
    computed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"recommendations of profile {self.profile_id}"


class SimilarItems(models.Model):
    """Items similar to one sku, from a run (served for the placement context ``item``)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="similar")
    sku = models.CharField(max_length=64)
    similar = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "sku"], name="uniq_similar_run_sku")]

    def __str__(self) -> str:
        return f"similar to {self.sku}"
