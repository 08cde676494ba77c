"""Compute experiments' results now: incrementally like the beat, or from scratch (`--rebuild`,
the repair: every visitor's stored values recomputed), and optionally check the stored values'
sums against the direct computation from exposures and events (`--check`)."""

from __future__ import annotations

import math

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from experiments.models import Experiment, ExperimentStatus
from experiments.results import (
    _exposures,
    results_aggregates_direct,
    results_aggregates_stored,
    results_compute,
)


def _equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for metric, arms in a.items():
        if arms.keys() != b[metric].keys():
            return False
        for arm, sums in arms.items():
            other = b[metric][arm]
            if sums.keys() != other.keys():
                return False
            for name, value in sums.items():
                if not math.isclose(value, other[name], rel_tol=1e-9, abs_tol=1e-9):
                    return False
    return True


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("keys", nargs="*", help="Experiment keys (default: every running one).")
        parser.add_argument("--rebuild", action="store_true", help="Recompute from scratch.")
        parser.add_argument(
            "--check",
            action="store_true",
            help="Compare the stored values' sums with the direct computation (slow: the full "
            "query); exit status 1 when they differ.",
        )

    def handle(self, *args, keys, rebuild, check, **options):
        experiments = Experiment.objects.all()
        if keys:
            experiments = experiments.filter(key__in=keys)
            missing = set(keys) - set(experiments.values_list("key", flat=True))
            if missing:
                raise CommandError(f"keys: no experiment {', '.join(sorted(missing))}")
        else:
            experiments = experiments.filter(status=ExperimentStatus.RUNNING)
        differ = 0
        for experiment in experiments.order_by("key"):
            snapshot = results_compute(experiment=experiment, rebuild=rebuild)
            computation = snapshot.data["computation"]
            why = computation["reason"] or f"{computation['visitors_recomputed']} visitors"
            line = (
                f"{experiment.key}: {computation['mode']} ({why}),"
                f" {snapshot.users} users, {snapshot.duration_ms} ms"
            )
            if check:
                as_of = snapshot.computed_at
                counts = dict(
                    _exposures(experiment, as_of)
                    .values_list("arm_key")
                    .annotate(n=Count("id"))
                    .order_by()
                )
                stored = results_aggregates_stored(experiment=experiment, counts=counts)
                direct = results_aggregates_direct(experiment=experiment, as_of=as_of)
                same = _equal(stored, direct)
                differ += not same
                line += (
                    "; stored sums equal the direct computation"
                    if same
                    else ("; stored sums differ from the direct computation: run --rebuild")
                )
            self.stdout.write(line)
        if differ:
            raise SystemExit(1)
