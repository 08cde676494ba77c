"""Experiments on a placement and their arms (each arm serves one of the placement's variants),
the metrics they are judged on, and their stored results."""

from __future__ import annotations

import json

from django.db import models

from core.models import TimestampedModel
from core.revisions import Revision
from core.validators import validate_condition_value


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"


class StatsEngine(models.TextChoices):
    FREQUENTIST = "frequentist", "Frequentist (fixed horizon)"
    SEQUENTIAL = "sequential", "Frequentist, sequential (read any day)"
    BAYESIAN = "bayesian", "Bayesian"


class MetricKind(models.TextChoices):
    CONVERSION = "conversion", "Conversion (did the event)"
    MEAN = "mean", "Mean per visitor"
    RATIO = "ratio", "Ratio of two sums"


class MetricAggregation(models.TextChoices):
    COUNT = "count", "Count of events"
    SUM_VALUE = "sum_value", "Sum of the event value"


class Metric(models.Model):
    """What an experiment is judged on, defined once and reused.

    Conversion: a visitor counts when they did a matching event within the attribution window
    after their first exposure. Mean: per visitor, the count of matching events or the sum of
    their value. Ratio: this metric's per-visitor sums divided by the denominator metric's
    (revenue per order).
    """

    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=12, choices=MetricKind.choices)
    event_type = models.CharField(max_length=32, help_text="Event type, e.g. purchase.")
    event_name = models.CharField(
        max_length=200, blank=True, default="", help_text="Event name; empty means any."
    )
    property_filter = models.JSONField(
        default=dict,
        blank=True,
        help_text='Only events whose properties equal these, e.g. {"plan": "pro"}.',
    )
    aggregation = models.CharField(
        max_length=12,
        choices=MetricAggregation.choices,
        default=MetricAggregation.COUNT,
        help_text="For mean and ratio metrics: count the events or sum their value.",
    )
    denominator = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Ratio metrics only: the metric whose per-visitor sum divides this one's.",
    )
    window_hours = models.PositiveIntegerField(
        default=72, help_text="Attribution window after first exposure, in hours."
    )
    higher_is_better = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class Experiment(TimestampedModel):
    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True, default="")
    placement = models.ForeignKey(
        "content.Placement", on_delete=models.CASCADE, related_name="experiments"
    )
    extra_placements = models.ManyToManyField(
        "content.Placement",
        blank=True,
        related_name="multivariate_experiments",
        help_text="Multivariate: the other placements (factors) this experiment spans.",
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
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)
    analysis_started_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Exposures from this time on are analysed (reset when the seed changes).",
    )
    sticky = models.BooleanField(
        default=False,
        help_text="Keep exposed visitors in their arm when weights change (costs one Redis "
        "read the first time a process sees a visitor on this placement).",
    )
    layer = models.SlugField(
        max_length=100,
        blank=True,
        default="",
        help_text="Experiments in one layer are mutually exclusive (disjoint hash ranges).",
    )
    layer_start = models.FloatField(default=0.0, help_text="Start of this experiment's slice.")
    layer_end = models.FloatField(default=1.0, help_text="End of this experiment's slice.")
    rollout_arm = models.ForeignKey(
        "Arm",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Stopped experiments only: serve this arm's variant to everyone.",
    )
    engine = models.CharField(
        max_length=12, choices=StatsEngine.choices, default=StatsEngine.FREQUENTIST
    )
    cuped = models.BooleanField(
        default=True, help_text="Reduce variance with the same metric before first exposure."
    )
    cuped_days = models.PositiveSmallIntegerField(default=14)
    planned_sample_size = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Visitors planned in total; fixed-horizon results read before it are flagged.",
    )
    bandit = models.BooleanField(
        default=False, help_text="Thompson-sampling allocation on the primary metric."
    )
    bandit_min_weight = models.FloatField(default=0.05)
    metrics = models.ManyToManyField(Metric, through="ExperimentMetric", related_name="+")

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
    extra_variants = models.ManyToManyField(
        "content.Variant",
        blank=True,
        related_name="experiment_arms_extra",
        help_text="Multivariate: this arm's variant on each of the experiment's other placements.",
    )

    class Meta:
        ordering = ["experiment", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="uniq_experiment_arm_key")
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}/{self.key}" if self.experiment_id else self.key


class MetricRole(models.TextChoices):
    PRIMARY = "primary", "Primary"
    SECONDARY = "secondary", "Secondary"
    GUARDRAIL = "guardrail", "Guardrail"


class ExperimentMetric(models.Model):
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="experiment_metrics"
    )
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=10, choices=MetricRole.choices)

    class Meta:
        ordering = ["experiment", "role", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "metric"], name="uniq_experiment_metric")
        ]

    def __str__(self) -> str:
        return f"{self.metric} ({self.role})"


class ResultSnapshot(models.Model):
    """One computation of an experiment's results (kept, so lift over time can be drawn)."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="result_snapshots"
    )
    computed_at = models.DateTimeField(db_index=True)
    users = models.PositiveIntegerField(default=0)
    srm_p_value = models.FloatField(null=True)
    data = models.JSONField(help_text="Per metric and arm: the statistics and estimates.")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["experiment", "-computed_at"]

    def __str__(self) -> str:
        return f"{self.experiment_id} @ {self.computed_at:%Y-%m-%d %H:%M}"


class Exposure(models.Model):
    """The first time a (pseudonymous) visitor was served an arm of an experiment.

    Written in batches by the `exposures_flush` task from the Redis buffer that decide fills; one
    row per experiment and visitor, so a re-run of a flush changes nothing.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    arm_key = models.CharField(max_length=100)
    profile_key = models.CharField(max_length=64, help_text="Pseudonymous visitor key.")
    # The visitor's profile, linked when one exists (by the flush, else by the results beat that
    # first sees one of its events: experiments.results): results join events on it, an integer,
    # instead of on the 64-character key through every profile. Follows identity merges (they
    # repoint every foreign key at the merged-away profile); no database constraint, so that a
    # flush never fails or waits on a profile being erased (an id without a profile joins no
    # event, as a key without one did).
    profile = models.ForeignKey(
        "profiles.Profile",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="experiment_exposures",
        help_text="The visitor's profile, once one exists.",
    )
    first_exposed_at = models.DateTimeField()

    class Meta:
        ordering = ["experiment", "first_exposed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "profile_key"], name="uniq_exposure_experiment_profile"
            )
        ]
        indexes = [
            models.Index(fields=["experiment", "arm_key"], name="exposure_experiment_arm"),
            # The incremental beat's "windows still open" read (exposures since a time).
            models.Index(
                fields=["experiment", "first_exposed_at"], name="exposure_experiment_first"
            ),
            # The exposures still to link to a profile (experiments.results._exposures_link).
            models.Index(
                fields=["experiment"],
                name="exposure_unlinked",
                condition=models.Q(profile__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}/{self.arm_key} {self.profile_key[:8]}…"


class FloatListField(models.Field):
    """A list of floats: a `double precision[]` column on PostgreSQL (summed element-wise by
    the database), JSON text elsewhere."""

    description = "List of floats"

    def db_type(self, connection):
        return "double precision[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        if isinstance(value, str):
            return [float(v) for v in json.loads(value)]
        return [float(v) for v in value]

    def to_python(self, value):
        if value is None or isinstance(value, list):
            return value
        return [float(v) for v in json.loads(value)]

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        numbers = [float(v) for v in value]
        return numbers if connection.vendor == "postgresql" else json.dumps(numbers)


class ExposureValue(models.Model):
    """One exposed visitor's values of all the experiment's metrics, materialised so that a beat
    only recomputes the visitors whose values can have changed (see experiments.results).

    `metric_values`: two numbers per metric of the experiment, in the order of
    `results._linked_metrics` (by metric id): the metric in the attribution window after first
    exposure (as of the last computation), then the same metric in the CUPED window before it
    or, for a ratio metric, the denominator in the window after. Visitors whose numbers are all
    0 are not stored (they add nothing to any sum; the arm's visitor count comes from the
    exposures). Deleted with the exposure (erasure) or the experiment.

    On PostgreSQL the table is partitioned by experiment (one partition per experiment, see
    migration 0008), so that a recomputation from scratch builds the experiment's partition
    with one parallel `CREATE TABLE ... AS` and swaps it in, instead of inserting and indexing
    row by row.
    """

    # No database constraints (the cascades are Django's): PostgreSQL checks Django's deferred
    # foreign keys row by row at commit, which made the commit of a recomputation from scratch
    # take minutes. The rows are written only from existing exposures.
    exposure = models.OneToOneField(
        Exposure,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        db_constraint=False,
    )
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    arm_key = models.CharField(max_length=100)
    metric_values = FloatListField()

    def __str__(self) -> str:
        return f"{self.exposure_id}: {self.metric_values}"


class ResultState(models.Model):
    """Where an experiment's incremental results computation stands: what its stored
    ExposureValue rows already account for."""

    experiment = models.OneToOneField(
        Experiment, on_delete=models.CASCADE, related_name="result_state"
    )
    as_of = models.DateTimeField(null=True, help_text="The stored values are as of this time.")
    exposure_watermark = models.BigIntegerField(
        default=0, help_text="Exposure rows up to this id are accounted for."
    )
    event_watermark = models.BigIntegerField(
        default=0, help_text="Events up to this id (received before a grace period) are."
    )
    fingerprint = models.CharField(
        max_length=64, blank=True, default="", help_text="Of the metric definitions used."
    )
    rebuilt_at = models.DateTimeField(null=True, help_text="Last recomputation from scratch.")

    def __str__(self) -> str:
        return f"{self.experiment_id} as of {self.as_of}"


class ExperimentRevision(Revision):
    """A saved state of an experiment's setup with its arms, metric links and placements
    (experiments/revisions.py), written on every change from the admin, the API or a lifecycle
    action, so that any change can be seen and, where the lifecycle rules allow, reverted."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="revisions")
    state = models.JSONField(help_text="The experiment's setup, arms and metrics at that time.")

    subject_field = "experiment"

    class Meta(Revision.Meta):
        pass
