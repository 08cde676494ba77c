"""Experiment revisions (the one mechanism of core/revisions.py): the state a revision keeps
(the setup fields, the arms with their variants and weights, the metric links, the extra
placements, and the lifecycle status for reading), the history for the admin, and the record
written after every change. Revert is lifecycle.experiment_revert: it restores the setup through
the same validation as any change (a running experiment's weights follow the sticky/new-seed
rule), never the status (start, pause and stop do that).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.revisions import History, json_value, revision_history, revision_record, shown_plain

from .models import Experiment, ExperimentRevision

if TYPE_CHECKING:
    from content.models import Placement

    from .lifecycle import ArmSpec
    from .models import Metric

# The experiment's own fields a revert restores (the key is fixed once created).
SETUP_FIELDS = (
    "name",
    "hypothesis",
    "placement",
    "coverage",
    "seed",
    "sticky",
    "condition",
    "layer",
    "layer_start",
    "layer_end",
    "engine",
    "cuped",
    "cuped_days",
    "planned_sample_size",
    "bandit",
    "bandit_min_weight",
)
# ... with the arms, metric links and extra placements: what a revert restores.
SETUP_KEYS = (*SETUP_FIELDS, "arms", "metrics", "extra_placements")
# Recorded for reading, and to tell whether a revision is the current state; never restored.
LIFECYCLE_KEYS = ("status", "rollout_arm")
# Keys only for reading history (kept readable after the objects they name are deleted).
_LABEL_KEYS = ("placement_key", "extra_placement_keys")
_ARM_RESTORED = ("key", "name", "variant", "weight", "is_control", "extra_variants")
_METRIC_RESTORED = ("metric", "role")

EXPERIMENT_HISTORY_LABELS = {
    "status": "status",
    "rollout_arm": "rolled out",
    "name": "name",
    "hypothesis": "hypothesis",
    "placement": "placement",
    "extra_placements": "extra placements",
    "coverage": "coverage",
    "seed": "seed",
    "sticky": "sticky",
    "layer": "layer",
    "layer_start": "layer start",
    "layer_end": "layer end",
    "condition": "eligibility",
    "arms": "arms",
    "metrics": "metrics",
    "engine": "engine",
    "cuped": "CUPED",
    "cuped_days": "CUPED days",
    "planned_sample_size": "planned sample",
    "bandit": "bandit",
    "bandit_min_weight": "bandit min weight",
}


def setup_state(
    *,
    experiment: Experiment,
    arms: Sequence[ArmSpec],
    metrics: Sequence[tuple[Metric, str]],
    extra_placements: Sequence[Placement],
    rollout_arm_key: str | None = None,
) -> dict[str, Any]:
    """The state of an experiment with these arms, metric links and extra placements, whether
    saved or only asked for (the ETag of a PUT's result is computed from it). No query when the
    arms' variants are loaded."""
    state: dict[str, Any] = {
        name: json_value(getattr(experiment, name)) for name in SETUP_FIELDS if name != "placement"
    }
    state["placement"] = experiment.placement_id
    state["placement_key"] = experiment.placement.key if experiment.placement_id else None
    state["status"] = experiment.status
    state["rollout_arm"] = rollout_arm_key
    state["extra_placements"] = sorted(p.pk for p in extra_placements)
    state["extra_placement_keys"] = sorted(p.key for p in extra_placements)
    state["arms"] = [
        {
            "key": arm.key,
            "name": arm.name or arm.key,
            "variant": arm.variant.pk if arm.variant is not None else None,
            "variant_key": arm.variant.key if arm.variant is not None else None,
            "weight": float(arm.weight),
            "is_control": bool(arm.is_control),
            "extra_variants": sorted(v.pk for v in arm.extra_variants),
            "extra_variant_keys": sorted(v.key for v in arm.extra_variants),
        }
        for arm in arms
    ]
    state["metrics"] = sorted(
        ({"metric": metric.pk, "metric_key": metric.key, "role": role} for metric, role in metrics),
        key=lambda link: (link["role"], link["metric"]),
    )
    return state


def experiment_state(experiment: Experiment) -> dict[str, Any]:
    """The stored state of an experiment (a few queries: arms, metrics, extra placements)."""
    from .lifecycle import arm_specs

    arms = list(experiment.arms.select_related("variant").prefetch_related("extra_variants").all())
    links = [
        (link.metric, link.role) for link in experiment.experiment_metrics.select_related("metric")
    ]
    rollout = experiment.rollout_arm.key if experiment.rollout_arm is not None else None
    return setup_state(
        experiment=experiment,
        arms=arm_specs(arms),
        metrics=links,
        extra_placements=list(experiment.extra_placements.all()),
        rollout_arm_key=rollout,
    )


def experiment_setup(state: dict[str, Any]) -> dict[str, Any]:
    """What a revert restores of a state (no lifecycle, no reading labels)."""
    setup = {name: state.get(name) for name in SETUP_KEYS}
    setup["arms"] = [{k: arm.get(k) for k in _ARM_RESTORED} for arm in state.get("arms") or []]
    setup["metrics"] = [
        {k: link.get(k) for k in _METRIC_RESTORED} for link in state.get("metrics") or []
    ]
    return setup


def experiment_recorded(state: dict[str, Any]) -> dict[str, Any]:
    """What makes two states different for the history and the ETag: the setup and the
    lifecycle (a start is a change worth a revision, though a revert never restores it)."""
    return experiment_setup(state) | {name: state.get(name) for name in LIFECYCLE_KEYS}


def experiment_revision_record(
    *, experiment: Experiment, before: dict[str, Any] | None, author: str, comment: str = ""
) -> ExperimentRevision | None:
    """Record the experiment's stored state when it differs from `before` (revision_record)."""
    return revision_record(  # type: ignore[return-value]
        model=ExperimentRevision,
        subject=experiment,
        before=before,
        after=experiment_state(experiment),
        author=author,
        comment=comment,
        restorable=experiment_recorded,
    )


def _shown(state: dict[str, Any], name: str) -> str:
    """History text of a state's value: arms and metrics one per line (so a diff is by arm)."""
    if name == "placement":
        return str(state.get("placement_key") or state.get("placement") or "")
    if name == "extra_placements":
        return ", ".join(state.get("extra_placement_keys") or []) or ""
    if name == "arms":
        lines = []
        for arm in state.get("arms") or []:
            main = str(arm.get("variant_key") or f"#{arm.get('variant')}")
            variants = " + ".join([main, *(arm.get("extra_variant_keys") or [])])
            control = " · control" if arm.get("is_control") else ""
            lines.append(f"{arm.get('key')}: {variants} · weight {arm.get('weight'):g}{control}")
        return "\n".join(lines)
    if name == "metrics":
        return "\n".join(
            f"{link.get('metric_key') or '#' + str(link.get('metric'))} ({link.get('role')})"
            for link in state.get("metrics") or []
        )
    if name == "condition":
        value = state.get(name)
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if value else ""
    return shown_plain(state, name)


def experiment_history(*, experiment: Experiment, limit: int = 10) -> History:
    """The experiment's latest revisions, each with what it changed (arms line by line), and
    which one is the current state."""
    stored = Experiment.objects.filter(pk=experiment.pk).select_related("placement").first()
    return revision_history(
        revisions=ExperimentRevision.objects.filter(experiment=experiment),
        current=experiment_recorded(experiment_state(stored)) if stored else {},
        restorable=experiment_recorded,
        labels=EXPERIMENT_HISTORY_LABELS,
        shown=_shown,
        limit=limit,
    )
