"""Serializers of the experiments API: strict input (unknown fields refused), documented output."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from segments.serializers import StrictSerializer

from ..models import ExperimentStatus, MetricRole, StatsEngine

KEY = r"^[-a-zA-Z0-9_]+$"


class ArmInputSerializer(StrictSerializer):
    key = serializers.RegexField(KEY, max_length=100)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    variant = serializers.RegexField(KEY, max_length=100, help_text="Variant key on the placement.")
    weight = serializers.FloatField(default=1.0, min_value=0, max_value=1e6)
    is_control = serializers.BooleanField(default=False)


class MetricLinkSerializer(StrictSerializer):
    metric = serializers.RegexField(KEY, max_length=100, help_text="Metric key.")
    role = serializers.ChoiceField(choices=MetricRole.choices)


class FactorSerializer(StrictSerializer):
    placement = serializers.RegexField(KEY, max_length=100)
    variants = serializers.ListField(
        child=serializers.RegexField(KEY, max_length=100), min_length=2, max_length=10
    )


class ExperimentCreateSerializer(StrictSerializer):
    key = serializers.RegexField(KEY, max_length=100)
    name = serializers.CharField(max_length=200)
    hypothesis = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    placement = serializers.RegexField(
        KEY, max_length=100, required=False, help_text="Placement key (A/B and A/B/n tests)."
    )
    coverage = serializers.FloatField(default=1.0, min_value=0, max_value=1)
    seed = serializers.CharField(max_length=100, required=False, allow_blank=True)
    sticky = serializers.BooleanField(default=False)
    layer = serializers.RegexField(KEY, max_length=100, required=False, allow_blank=True)
    layer_start = serializers.FloatField(default=0.0, min_value=0, max_value=1)
    layer_end = serializers.FloatField(default=1.0, min_value=0, max_value=1)
    engine = serializers.ChoiceField(choices=StatsEngine.choices, default=StatsEngine.FREQUENTIST)
    cuped = serializers.BooleanField(default=True)
    planned_sample_size = serializers.IntegerField(
        required=False, allow_null=True, min_value=2, max_value=10**10
    )
    arms = ArmInputSerializer(many=True, min_length=2, max_length=50, required=False)
    factors = FactorSerializer(
        many=True,
        required=False,
        min_length=2,
        max_length=4,
        help_text="Multivariate instead of placement and arms: a full factorial, one arm per "
        "combination of the factors' variants (the first variants make the control).",
    )
    metrics = MetricLinkSerializer(many=True, required=False, max_length=50)

    def validate(self, attrs):
        if "factors" in attrs:
            for name in ("placement", "arms"):
                if name in attrs:
                    raise serializers.ValidationError({name: "Give factors or this, not both."})
        else:
            for name in ("placement", "arms"):
                if name not in attrs:
                    raise serializers.ValidationError({name: "This field is required."})
        return attrs


class ArmUpdateSerializer(ArmInputSerializer):
    extra_variants = serializers.ListField(
        child=serializers.RegexField(KEY, max_length=100),
        required=False,
        max_length=4,
        help_text="Multivariate: the arm's variant key on each extra placement.",
    )


class ExperimentUpdateSerializer(StrictSerializer):
    """PUT (every field; one left out takes its default) or PATCH (only the fields sent) of an
    experiment's setup. The key is fixed; the status changes through start, pause and stop;
    fields the API does not show (eligibility condition, bandit) keep their values."""

    key = serializers.RegexField(KEY, max_length=100, required=False, help_text="Fixed.")
    name = serializers.CharField(max_length=200)
    hypothesis = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    placement = serializers.RegexField(KEY, max_length=100, help_text="Placement key.")
    coverage = serializers.FloatField(default=1.0, min_value=0, max_value=1)
    seed = serializers.CharField(max_length=100, required=False, allow_blank=True)
    sticky = serializers.BooleanField(default=False)
    layer = serializers.RegexField(KEY, max_length=100, required=False, allow_blank=True)
    layer_start = serializers.FloatField(default=0.0, min_value=0, max_value=1)
    layer_end = serializers.FloatField(default=1.0, min_value=0, max_value=1)
    engine = serializers.ChoiceField(choices=StatsEngine.choices, default=StatsEngine.FREQUENTIST)
    cuped = serializers.BooleanField(default=True)
    planned_sample_size = serializers.IntegerField(
        required=False, allow_null=True, min_value=2, max_value=10**10
    )
    # many=True makes a ListSerializer, which takes the bounds (the stubs do not know it).
    arms = ArmUpdateSerializer(many=True, min_length=2, max_length=50)  # type: ignore[call-arg]
    metrics = MetricLinkSerializer(  # type: ignore[call-arg]
        many=True, required=False, max_length=50
    )


class StatusSerializer(StrictSerializer):
    rollout_arm = serializers.RegexField(
        KEY, max_length=100, required=False, help_text="Stop only: arm to serve to everyone."
    )


class ArmOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    variant = serializers.CharField(source="variant.key")
    extra_variants = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_extra_variants(self, arm) -> list[str]:
        return [v.key for v in arm.extra_variants.all()]

    weight = serializers.FloatField()
    is_control = serializers.BooleanField()


class ExperimentOutputSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    hypothesis = serializers.CharField()
    placement = serializers.CharField(source="placement.key")
    extra_placements = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=ExperimentStatus.choices)
    coverage = serializers.FloatField()
    sticky = serializers.BooleanField()
    layer = serializers.CharField()
    layer_start = serializers.FloatField()
    layer_end = serializers.FloatField()
    engine = serializers.CharField()
    cuped = serializers.BooleanField()
    planned_sample_size = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    rollout_arm = serializers.CharField(source="rollout_arm.key", allow_null=True, default=None)
    arms = ArmOutputSerializer(many=True, source="arms.all")

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_extra_placements(self, experiment) -> list[str]:
        return [p.key for p in experiment.extra_placements.all()]


class ResultsSerializer(serializers.Serializer):
    experiment = serializers.CharField()
    computed_at = serializers.DateTimeField(allow_null=True)
    users = serializers.IntegerField()
    srm_p_value = serializers.FloatField(allow_null=True)
    data = serializers.JSONField(help_text="Arms, metrics, per-arm statistics and estimates.")
    history = serializers.ListField(
        child=serializers.JSONField(), help_text="Earlier computations: time, users, lifts."
    )


class PlanInputSerializer(StrictSerializer):
    baseline = serializers.FloatField(
        min_value=1e-9, max_value=1e9, help_text="Control conversion rate, or mean (with std)."
    )
    std = serializers.FloatField(
        required=False, min_value=1e-9, max_value=1e9, help_text="Per-visitor std (means)."
    )
    users_per_arm = serializers.IntegerField(required=False, min_value=2, max_value=10**10)
    effect = serializers.FloatField(
        required=False, min_value=1e-6, max_value=100, help_text="Relative lift to detect."
    )
    power = serializers.FloatField(default=0.8, min_value=0.5, max_value=0.99)
    alpha = serializers.FloatField(default=0.05, min_value=0.001, max_value=0.2)

    def validate(self, attrs):
        if "std" not in attrs and not 0 < attrs["baseline"] < 1:
            raise serializers.ValidationError(
                {"baseline": "A conversion rate must be between 0 and 1 (or give std)."}
            )
        if "users_per_arm" not in attrs and "effect" not in attrs:
            raise serializers.ValidationError(
                {"users_per_arm": "Give users_per_arm (for the MDE) or effect (for the size)."}
            )
        return attrs


class PlanOutputSerializer(serializers.Serializer):
    minimum_detectable_effect = serializers.FloatField(allow_null=True, required=False)
    users_per_arm = serializers.IntegerField(allow_null=True, required=False)
