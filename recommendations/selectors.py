"""Reads of recommendations: the catalog, interactions from the events table, runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from segments.models import Event

from .models import Item, RunStatus, TrainingRun


def catalog_skus() -> dict[str, str]:
    """Every catalog sku and its category."""
    return dict(Item.objects.values_list("sku", "category"))


def interaction_chunks(
    *, since: datetime, event_types: list[str], chunk_size: int
) -> Iterator[list[tuple[int, int, str, datetime, Any]]]:
    """Events of these types since a date, newest first, as (id, profile id, type, time, sku)
    lists of at most chunk_size rows (keyset pagination on the id: each query is bounded, and
    memory is one chunk; a caller that stops early has kept the newest events)."""
    last = None
    base = Event.objects.filter(type__in=event_types, occurred_at__gte=since)
    while True:
        page = base if last is None else base.filter(pk__lt=last)
        rows = list(
            page.order_by("-pk").values_list(
                "pk", "profile_id", "type", "occurred_at", "properties__sku"
            )[:chunk_size]
        )
        if not rows:
            return
        last = rows[-1][0]
        yield rows
        if len(rows) < chunk_size:
            return


def run_active() -> TrainingRun | None:
    return TrainingRun.objects.filter(status=RunStatus.ACTIVE).order_by("-started_at").first()


def runs_for_chart(*, limit: int = 50) -> list[dict[str, Any]]:
    """The last runs with figures, oldest first, for the admin's chart."""
    runs = (
        TrainingRun.objects.exclude(precision=None)
        .order_by("-started_at")
        .values(
            "pk",
            "started_at",
            "status",
            "precision",
            "recall",
            "map",
            "ndcg",
            "coverage",
            "baseline_precision",
            "baseline_ndcg",
        )[:limit]
    )
    out = []
    for run in reversed(list(runs)):
        run["started_at"] = run["started_at"].isoformat()
        out.append(run)
    return out
