"""Reads of recommendations: the catalog, interactions from the events table, runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from profiles.models import Event

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


def segment_members(*, profile_ids) -> dict[str, list[int]]:
    """Members of every active segment among these profiles (segment key -> profile ids), read
    in chunks; profiles not in ``profile_ids`` (a set) are skipped."""
    from segments.models import SegmentMembership

    out: dict[str, list[int]] = {}
    rows = (
        SegmentMembership.objects.filter(segment__is_active=True)
        .order_by()
        .values_list("segment__key", "profile_id")
    )
    for segment_key, profile_id in rows.iterator(chunk_size=20_000):
        if profile_id in profile_ids:
            out.setdefault(segment_key, []).append(profile_id)
    return out


IMPRESSION_EVENT = "recommendation_impression"
CLICK_EVENT = "recommendation_click"


def runs_online_ctr(*, run_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Impressions and clicks per model version, from the page's custom events
    (``name`` recommendation_impression / recommendation_click, ``properties.run`` the run id the
    block carried, see mosaic.js), in total and per source family (``als``, ``similar``,
    ``popularity:segment``, ...: a run also serves its popularity lists, whose clicks should not
    be credited to its personal lists). One grouped query."""
    from django.db.models import Count

    wanted = {str(r) for r in run_ids}
    out: dict[int, dict[str, Any]] = {
        r: {"impressions": 0, "clicks": 0, "by_source": {}} for r in run_ids
    }
    if not wanted:
        return out
    rows = (
        Event.objects.filter(type="custom", name__in=[IMPRESSION_EVENT, CLICK_EVENT])
        .order_by()  # the model's default ordering would split the groups
        .values("name", "properties__run", "properties__source")
        .annotate(n=Count("id"))
    )
    for row in rows:
        run = str(row["properties__run"])
        if run not in wanted:
            continue
        kind = "impressions" if row["name"] == IMPRESSION_EVENT else "clicks"
        counts = out[int(run)]
        counts[kind] += row["n"]
        family = source_family(row["properties__source"])
        per_source = counts["by_source"].setdefault(family, {"impressions": 0, "clicks": 0})
        per_source[kind] += row["n"]
    return out


def source_family(source: Any) -> str:
    """``popularity:segment:club-0`` -> ``popularity:segment``: bounded groups for the admin."""
    if not isinstance(source, str) or not source:
        return "unknown"
    if source.startswith("popularity:segment:"):
        return "popularity:segment"
    return source[:40]


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
