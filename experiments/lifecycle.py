"""Experiment setup and lifecycle: validation of a setup that can run, create, start, pause, stop.

Every write path (admin, API, seed) goes through `experiment_validate`, so a setup that cannot
run is refused where it is saved, with the field named, instead of saving and silently serving
the default: arms must serve variants of the experiment's placement, at least two distinct
variants, exactly one control, positive weights; a layer slice must not overlap another live
experiment's; changing the weights of a running, non-sticky experiment requires a new seed (which
restarts the analysis), because it would otherwise move exposed visitors between arms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from content.models import Placement, Variant
from core.revisions import revert_comment

from .models import (
    Arm,
    Experiment,
    ExperimentMetric,
    ExperimentRevision,
    ExperimentStatus,
    Metric,
    MetricRole,
)
from .revisions import (
    SETUP_FIELDS,
    experiment_recorded,
    experiment_revision_record,
    experiment_setup,
    experiment_state,
    setup_state,
)

LIVE_STATUSES = (ExperimentStatus.DRAFT, ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)
ALLOWED_TRANSITIONS = {
    ExperimentStatus.DRAFT: {ExperimentStatus.RUNNING, ExperimentStatus.STOPPED},
    ExperimentStatus.RUNNING: {ExperimentStatus.PAUSED, ExperimentStatus.STOPPED},
    ExperimentStatus.PAUSED: {ExperimentStatus.RUNNING, ExperimentStatus.STOPPED},
    ExperimentStatus.STOPPED: set(),
}


@dataclass(frozen=True, slots=True)
class ArmSpec:
    """An arm as submitted (admin inline row or API item), before it is saved."""

    key: str
    variant: Variant | None
    weight: float
    is_control: bool
    name: str = ""
    # Multivariate: the arm's variant on each of the experiment's other placements.
    extra_variants: tuple[Variant, ...] = ()


def _weights_of(arms: Sequence[ArmSpec]) -> dict[str, float]:
    total = sum(a.weight for a in arms) or 1.0
    return {a.key: round(a.weight / total, 9) for a in arms}


def experiment_validate(
    *,
    experiment: Experiment,
    arms: Sequence[ArmSpec],
    extra_placements: Sequence[Placement] | None = None,
) -> dict[str, str]:
    """Problems that keep this setup from running, by field name (empty when it can run)."""
    errors: dict[str, str] = {}
    if extra_placements is None:
        extra_placements = list(experiment.extra_placements.all()) if experiment.pk else []
    extra_ids = {p.pk for p in extra_placements}
    if experiment.placement_id in extra_ids:
        errors["extra_placements"] = "The main placement cannot also be an extra placement."
    for arm in arms:
        got = sorted(v.placement_id for v in arm.extra_variants)
        if got != sorted(extra_ids):
            names = ", ".join(sorted(p.key for p in extra_placements)) or "none"
            errors["extra_variants"] = (
                f"Arm {arm.key} must have exactly one variant on each extra placement ({names})."
            )
            break
    if not (math.isfinite(experiment.coverage) and 0 <= experiment.coverage <= 1):
        errors["coverage"] = "Coverage must be between 0 and 1."

    keys = [a.key for a in arms]
    if len(set(keys)) != len(keys):
        errors["arms"] = "Arm keys must be unique."
    bad_weight = [a.key for a in arms if not (math.isfinite(a.weight) and a.weight > 0)]
    if bad_weight:
        errors["weight"] = f"Weights must be positive numbers (arm {', '.join(bad_weight)})."
    missing = [a.key for a in arms if a.variant is None]
    off = [
        f"{a.key} ({a.variant.placement.key})"
        for a in arms
        if a.variant is not None and a.variant.placement_id != experiment.placement_id
    ]
    if missing:
        errors["variant"] = f"Every arm needs a variant (arm {', '.join(missing)})."
    elif off:
        placement = experiment.placement.key if experiment.placement_id else "?"
        errors["variant"] = (
            f"Arms must serve variants of placement {placement}; not: {', '.join(off)}."
        )
    combos = [(a.variant.pk, *sorted(v.pk for v in a.extra_variants)) for a in arms if a.variant]
    if "arms" not in errors and len(set(combos)) < 2:
        errors["arms"] = "An experiment needs at least two arms serving distinct variants."
    elif "arms" not in errors and len(set(combos)) != len(combos):
        errors["arms"] = "Two arms serve the same variants: each arm must differ."
    controls = sum(1 for a in arms if a.is_control)
    if controls != 1:
        errors["is_control"] = f"Exactly one arm must be the control (found {controls})."

    if experiment.layer:
        start, end = experiment.layer_start, experiment.layer_end
        if not (0 <= start < end <= 1):
            errors["layer_start"] = "The layer slice must satisfy 0 <= start < end <= 1."
        else:
            clash = (
                Experiment.objects.filter(
                    layer=experiment.layer,
                    status__in=LIVE_STATUSES,
                    layer_start__lt=end,
                    layer_end__gt=start,
                )
                .exclude(pk=experiment.pk)
                .values_list("key", flat=True)
                .first()
            )
            if clash:
                errors["layer_start"] = (
                    f"The slice [{start}, {end}) overlaps experiment {clash} in layer "
                    f"{experiment.layer}: experiments of one layer must not overlap."
                )

    previous = (
        Experiment.objects.filter(pk=experiment.pk).first() if experiment.pk is not None else None
    )
    if previous is not None and previous.status != experiment.status:
        allowed = ALLOWED_TRANSITIONS[ExperimentStatus(previous.status)]
        if ExperimentStatus(experiment.status) not in allowed:
            errors["status"] = (
                f"An experiment cannot go from {previous.status} to {experiment.status}."
            )
    if (
        previous is not None
        and previous.status in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)
        and not experiment.sticky
        and (experiment.seed or experiment.key) == (previous.seed or previous.key)
        and "weight" not in errors
    ):
        old = {a.key: a.weight for a in previous.arms.all()}
        old_total = sum(old.values()) or 1.0
        old_shares = {k: round(w / old_total, 9) for k, w in old.items()}
        if old_shares and old_shares != _weights_of(arms):
            errors["seed"] = (
                "Changing the arms or weights of a started experiment would move exposed "
                "visitors to other arms: make it sticky (visitors keep their arm), or change "
                "the seed too (assignment and analysis restart)."
            )

    if experiment.rollout_arm_id is not None:
        if experiment.status != ExperimentStatus.STOPPED:
            errors["rollout_arm"] = "Only a stopped experiment can roll out an arm."
        elif experiment.rollout_arm.experiment_id != experiment.pk:
            errors["rollout_arm"] = "The rolled-out arm must be one of this experiment's arms."
    if experiment.bandit and not experiment.sticky:
        errors["sticky"] = "A bandit moves weights every run: it must be sticky."
    if experiment.bandit and not 0 <= experiment.bandit_min_weight <= 1 / max(len(arms), 1):
        errors["bandit_min_weight"] = "The bandit's minimum weight must be in [0, 1/arms]."
    return errors


def experiment_stamp(*, experiment: Experiment, previous: Experiment | None) -> None:
    """Record start/stop times and the analysis start (a new seed restarts the analysis)."""
    now = timezone.now()
    if experiment.status == ExperimentStatus.RUNNING:
        if experiment.started_at is None:
            experiment.started_at = now
        if experiment.analysis_started_at is None:
            experiment.analysis_started_at = now
    if experiment.status == ExperimentStatus.STOPPED and experiment.ended_at is None:
        experiment.ended_at = now
    if (
        previous is not None
        and previous.started_at is not None
        and (experiment.seed or experiment.key) != (previous.seed or previous.key)
    ):
        experiment.analysis_started_at = now


def _raise(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError({k: [v] for k, v in errors.items()})


def arm_specs(arms: Sequence[Arm]) -> list[ArmSpec]:
    return [
        ArmSpec(
            a.key,
            a.variant,
            float(a.weight),
            a.is_control,
            a.name,
            tuple(a.extra_variants.all()) if a.pk else (),
        )
        for a in arms
    ]


@transaction.atomic
def experiment_create(
    *,
    fields: dict[str, Any],
    arms: Sequence[ArmSpec],
    metrics: Sequence[tuple[Metric, str]] = (),
    extra_placements: Sequence[Placement] = (),
    author: str = "",
) -> Experiment:
    """Create an experiment with its arms and metrics in one transaction, or raise
    ValidationError naming the field (nothing written); its first revision names `author`."""
    experiment = Experiment(**fields)
    errors = experiment_validate(
        experiment=experiment, arms=arms, extra_placements=list(extra_placements)
    )
    primaries = sum(1 for _, role in metrics if role == MetricRole.PRIMARY)
    if metrics and primaries != 1:
        errors["metrics"] = "Exactly one metric must be primary."
    _raise(errors)
    experiment.full_clean(exclude=["metrics"])
    experiment_stamp(experiment=experiment, previous=None)
    experiment.save()
    experiment.extra_placements.set(extra_placements)
    created = Arm.objects.bulk_create(
        [
            Arm(
                experiment=experiment,
                key=a.key,
                name=a.name or a.key,
                variant=a.variant,
                weight=a.weight,
                is_control=a.is_control,
                position=i,
            )
            for i, a in enumerate(arms)
        ]
    )
    for arm, spec in zip(created, arms, strict=True):
        if spec.extra_variants:
            arm.extra_variants.set(spec.extra_variants)
    ExperimentMetric.objects.bulk_create(
        [ExperimentMetric(experiment=experiment, metric=m, role=role) for m, role in metrics]
    )
    # bulk_create sends no post_save: tell the snapshot the arms exist.
    experiment.save(update_fields=["updated_at"])
    experiment_revision_record(experiment=experiment, before=None, author=author, comment="Created")
    return experiment


@transaction.atomic
def experiment_set_status(
    *, experiment: Experiment, status: str, rollout_arm: Arm | None = None, author: str = ""
) -> Experiment:
    """Start, pause or stop (optionally rolling out an arm); refuses impossible transitions.
    The change is recorded as a revision naming `author`."""
    locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
    previous = Experiment.objects.get(pk=experiment.pk)
    before = experiment_state(previous)
    locked.status = status
    locked.rollout_arm = rollout_arm
    errors = experiment_validate(
        experiment=locked, arms=arm_specs(list(locked.arms.select_related("variant__placement")))
    )
    _raise(errors)
    experiment_stamp(experiment=locked, previous=previous)
    locked.save()
    experiment_revision_record(
        experiment=locked, before=before, author=author, comment=f"Status: {status}"
    )
    return locked


def experiment_create_factorial(
    *,
    fields: dict[str, Any],
    factors: Sequence[tuple[Placement, Sequence[Variant]]],
    metrics: Sequence[tuple[Metric, str]] = (),
    author: str = "",
) -> Experiment:
    """A full-factorial multivariate experiment: one arm per combination of the factors'
    variants (the first placement is the experiment's main placement; the combination of every
    factor's first variant is the control), equal weights."""
    if len(factors) < 2:
        raise ValidationError({"factors": ["A multivariate experiment needs two factors."]})
    if any(len(variants) < 2 for _, variants in factors):
        raise ValidationError({"factors": ["Each factor needs at least two variants."]})
    combinations = list(product(*[variants for _, variants in factors]))
    if len(combinations) > 50:
        raise ValidationError({"factors": ["At most 50 combinations."]})
    arms = [
        ArmSpec(
            key="-".join(v.key for v in combo)[:100],
            variant=combo[0],
            weight=1.0,
            is_control=index == 0,
            name=" x ".join(v.name for v in combo)[:200],
            extra_variants=tuple(combo[1:]),
        )
        for index, combo in enumerate(combinations)
    ]
    return experiment_create(
        fields={**fields, "placement": factors[0][0]},
        arms=arms,
        metrics=metrics,
        extra_placements=[placement for placement, _ in factors[1:]],
        author=author,
    )


def _arms_replace(experiment: Experiment, arms: Sequence[ArmSpec]) -> None:
    """Make the experiment's arms these: an arm whose key exists is updated in place (its row,
    and so a rolled-out arm, stays), others are created, arms left out are deleted."""
    existing = {arm.key: arm for arm in experiment.arms.all()}
    wanted = {spec.key for spec in arms}
    Arm.objects.filter(experiment=experiment).exclude(key__in=wanted).delete()
    for position, spec in enumerate(arms):
        arm = existing.get(spec.key) or Arm(experiment=experiment, key=spec.key)
        arm.name = spec.name or spec.key
        arm.variant = spec.variant  # type: ignore[assignment]  # validated: every arm has one
        arm.weight = spec.weight
        arm.is_control = spec.is_control
        arm.position = position
        arm.save()
        arm.extra_variants.set(spec.extra_variants)


@transaction.atomic
def experiment_update(
    *,
    experiment: Experiment,
    fields: dict[str, Any],
    arms: Sequence[ArmSpec] | None = None,
    metrics: Sequence[tuple[Metric, str]] | None = None,
    author: str = "",
    comment: str = "",
) -> Experiment:
    """Change an experiment's setup (fields; arms and metric links when given, replacing them)
    under the same rules as the admin (experiment_validate: arms, weights of a started
    experiment, layers, transitions), or raise ValidationError naming the field (nothing
    written). A change is recorded as a revision naming `author`; a change to nothing writes
    nothing."""
    locked = (
        Experiment.objects.select_for_update()
        .select_related("placement", "rollout_arm")
        .get(pk=experiment.pk)
    )
    before = experiment_state(locked)
    previous = Experiment.objects.get(pk=experiment.pk)
    for name, value in fields.items():
        setattr(locked, name, value)
    if arms is None:
        arms = arm_specs(list(locked.arms.select_related("variant__placement")))
    errors = experiment_validate(experiment=locked, arms=arms)
    if metrics is not None:
        primaries = sum(1 for _, role in metrics if role == MetricRole.PRIMARY)
        if metrics and primaries != 1:
            errors["metrics"] = "Exactly one metric must be primary."
    _raise(errors)
    wanted = setup_state(
        experiment=locked,
        arms=arms,
        metrics=metrics
        if metrics is not None
        else [(link.metric, link.role) for link in locked.experiment_metrics.all()],
        extra_placements=list(locked.extra_placements.all()),
        rollout_arm_key=before["rollout_arm"],
    )
    if experiment_recorded(wanted) == experiment_recorded(before):
        return previous  # a change to nothing (a repeated PUT): nothing written
    locked.full_clean(exclude=["metrics", "key"])
    experiment_stamp(experiment=locked, previous=previous)
    locked.save()
    _arms_replace(locked, arms)
    if metrics is not None:
        ExperimentMetric.objects.filter(experiment=locked).delete()
        ExperimentMetric.objects.bulk_create(
            [ExperimentMetric(experiment=locked, metric=m, role=role) for m, role in metrics]
        )
    locked = Experiment.objects.select_related("placement", "rollout_arm").get(pk=locked.pk)
    experiment_revision_record(experiment=locked, before=before, author=author, comment=comment)
    # The arms and links changed without the experiment's own signal: tell the snapshot.
    locked.save(update_fields=["updated_at"])
    return locked


def _revert_refused(experiment: Experiment, revision: ExperimentRevision, reason: str):
    return ValidationError(
        f'Experiment "{experiment.key}" cannot go back to the revision of '
        f"{revision.created_at:%Y-%m-%d %H:%M:%S}: {reason}",
        code="revision_refused",
    )


@transaction.atomic
def experiment_revert(*, revision: ExperimentRevision, author: str) -> Experiment:
    """Bring an experiment's setup (fields, arms, weights, metric links) back to a revision's,
    through experiment_update: only where a change to that setup is allowed now (a running,
    non-sticky experiment's weights change only with a new seed; a layer slice must still be
    free...). The status is never restored (start, pause, stop do that). Raises ValidationError
    saying why otherwise; the revert is itself recorded."""
    experiment = Experiment.objects.select_for_update().get(pk=revision.experiment_id)
    setup = experiment_setup(revision.state)
    if setup == experiment_setup(experiment_state(experiment)):
        raise _revert_refused(
            experiment,
            revision,
            "its setup is the current one (it differs only in its status: start, pause or "
            "stop the experiment instead).",
        )
    if sorted(setup["extra_placements"] or []) != sorted(
        experiment.extra_placements.values_list("pk", flat=True)
    ):
        raise _revert_refused(experiment, revision, "its extra placements were different.")
    placement = Placement.objects.filter(pk=setup["placement"]).first()
    if placement is None:
        raise _revert_refused(experiment, revision, "its placement no longer exists.")
    variant_ids = {arm["variant"] for arm in setup["arms"]} | {
        v for arm in setup["arms"] for v in arm["extra_variants"] or []
    }
    variants = Variant.objects.select_related("placement").in_bulk(list(variant_ids))
    gone = sorted(
        str(arm.get("variant_key") or arm["variant"])
        for arm in revision.state.get("arms") or []
        if arm["variant"] not in variants
    )
    if gone or len(variants) != len(variant_ids):
        raise _revert_refused(
            experiment, revision, f"variants of its arms no longer exist ({', '.join(gone)})."
        )
    metric_ids = [link["metric"] for link in setup["metrics"]]
    known = Metric.objects.in_bulk(metric_ids)
    if len(known) != len(set(metric_ids)):
        raise _revert_refused(experiment, revision, "metrics it used no longer exist.")
    arms = [
        ArmSpec(
            key=arm["key"],
            variant=variants[arm["variant"]],
            weight=float(arm["weight"]),
            is_control=bool(arm["is_control"]),
            name=arm.get("name") or "",
            extra_variants=tuple(variants[v] for v in arm["extra_variants"] or []),
        )
        for arm in setup["arms"]
    ]
    fields = {name: setup[name] for name in SETUP_FIELDS_RESTORED if name in revision.state}
    fields["placement"] = placement
    try:
        return experiment_update(
            experiment=experiment,
            fields=fields,
            arms=arms,
            metrics=[(known[link["metric"]], link["role"]) for link in setup["metrics"]],
            author=author,
            comment=revert_comment(revision),
        )
    except ValidationError as exc:
        reasons = (
            [f"{field}: {m}" for field, messages in exc.message_dict.items() for m in messages]
            if hasattr(exc, "error_dict")
            else exc.messages
        )
        raise _revert_refused(experiment, revision, " ".join(reasons)) from exc


# The experiment's own fields a revert restores (the placement is resolved separately).
SETUP_FIELDS_RESTORED = tuple(name for name in SETUP_FIELDS if name != "placement")
