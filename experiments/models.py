"""Experiments on a placement and their arms (each arm serves one of the placement's variants)."""

from __future__ import annotations

from django.db import models

from core.validators import validate_condition_value


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"


class Experiment(models.Model):
    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True, default="")
    placement = models.ForeignKey(
        "content.Placement", on_delete=models.CASCADE, related_name="experiments"
    )
    status = models.CharField(
        max_length=8, choices=ExperimentStatus.choices, default=ExperimentStatus.DRAFT
    )
    coverage = models.FloatField(
        default=1.0, help_text="Share of eligible visitors enrolled (0 to 1)."
    )
    seed = models.CharField(
        max_length=100, blank=True, default="", help_text="Hash seed; the key when empty."
    )
    condition = models.JSONField(
        default=dict,
        validators=[validate_condition_value],
        blank=True,
        help_text="Who is eligible; empty means everyone.",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Arm(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    weight = models.FloatField(default=1.0)
    variant = models.ForeignKey(
        "content.Variant", on_delete=models.PROTECT, related_name="experiment_arms"
    )
    is_control = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["experiment", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="uniq_experiment_arm_key")
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}/{self.key}" if self.experiment_id else self.key


class Exposure(models.Model):
    """The first time a (pseudonymous) visitor was served an arm of an experiment.

    Written in batches by the `exposures_flush` task from the Redis buffer that decide fills; one
    row per experiment and visitor, so a re-run of a flush changes nothing.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    arm_key = models.CharField(max_length=100)
    profile_key = models.CharField(max_length=64, help_text="Pseudonymous visitor key.")
    first_exposed_at = models.DateTimeField()

    class Meta:
        ordering = ["experiment", "first_exposed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "profile_key"], name="uniq_exposure_experiment_profile"
            )
        ]
        indexes = [models.Index(fields=["experiment", "arm_key"], name="exposure_experiment_arm")]

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.arm_key} {self.profile_key[:8]}…"
