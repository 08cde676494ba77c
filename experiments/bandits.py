"""Bandit experiments: Thompson-sampling weights on the primary metric, written to the arms.

Bandit experiments must be sticky (validated at save): their weights move every run, and a
visitor already exposed keeps their arm.
"""

from __future__ import annotations

from django.db import transaction

from . import stats
from .models import Arm, Experiment, ResultSnapshot


def bandit_update(*, experiment: Experiment, snapshot: ResultSnapshot) -> bool:
    """New arm weights from the snapshot's primary metric; False when there is none yet."""
    primary = next((m for m in snapshot.data.get("metrics", []) if m["role"] == "primary"), None)
    if primary is None or primary["kind"] == "ratio":
        return False
    arms = []
    for row in primary["arms"]:
        if primary["kind"] == "conversion":
            arms.append(stats.Proportion(n=row["n"], conversions=min(row["sum"], row["n"])))
        else:
            arms.append(stats.Mean(n=row["n"], sum=row["sum"], sum_squares=row["sum_squares"]))
    weights = stats.thompson_weights(
        arms,
        min_weight=min(experiment.bandit_min_weight, 1 / len(arms)),
        inverse=not primary["higher_is_better"],
        seed=snapshot.pk,
    )
    with transaction.atomic():
        for row, weight in zip(primary["arms"], weights, strict=True):
            Arm.objects.filter(experiment=experiment, key=row["arm"]).update(weight=weight)
        # Arms were updated in bulk (no signal): a save tells the snapshot to rebuild.
        experiment.save(update_fields=["updated_at"])
    return True
