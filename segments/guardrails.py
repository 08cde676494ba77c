"""Guardrails: warnings on segments (too small, overloaded placements, failed runs) and the
overlap between segments (Jaccard), for the admin and the API. Reads only."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection

from .models import RunStatus, Segment, SegmentMembership

SEGMENTS_PATH = "profile.segments"


def condition_segment_keys(condition: Any) -> set[str]:
    """Segment keys a condition refers to through `profile.segments` (any operator)."""
    found: set[str] = set()

    def strings(value: Any) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            for item in value:
                strings(item)
        elif isinstance(value, dict):
            for item in value.values():
                strings(item)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                if name == SEGMENTS_PATH:
                    strings(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(condition)
    return found


def placements_segment_keys() -> dict[str, set[str]]:
    """For each placement key, the segment keys its variants' conditions target."""
    variant_model = apps.get_model("content", "Variant")
    targeted: dict[str, set[str]] = defaultdict(set)
    rows = variant_model.objects.values_list("placement__key", "condition")
    for placement_key, condition in rows:
        targeted[placement_key] |= condition_segment_keys(condition)
    return dict(targeted)


def placements_overloaded() -> dict[str, set[str]]:
    limit = settings.MOSAIC_PLACEMENT_MAX_SEGMENTS
    return {k: v for k, v in placements_segment_keys().items() if len(v) > limit}


def segment_warnings(
    *, segment: Segment, overloaded: dict[str, set[str]] | None = None
) -> list[dict[str, str]]:
    """[{"code", "message"}] for this segment; `overloaded` saves recomputing it per segment."""
    warnings = []
    minimum = settings.MOSAIC_SEGMENT_MIN_SIZE
    if segment.computed_at is not None and segment.member_count < minimum:
        warnings.append(
            {
                "code": "too_small",
                "message": f"{segment.member_count} members, fewer than {minimum}: too small "
                "to act on or to measure.",
            }
        )
    if overloaded is None:
        overloaded = placements_overloaded()
    for placement_key, keys in sorted(overloaded.items()):
        if segment.key in keys:
            warnings.append(
                {
                    "code": "placement_overloaded",
                    "message": f"Placement {placement_key!r} targets {len(keys)} segments "
                    f"(more than {settings.MOSAIC_PLACEMENT_MAX_SEGMENTS}).",
                }
            )
    last = segment.runs.only("status").first()
    if last is not None and last.status in (RunStatus.FAILED, RunStatus.ABANDONED):
        warnings.append({"code": "last_run_failed", "message": f"The last run {last.status}."})
    return warnings


def segments_overlap(*, segments: list[Segment]) -> dict[str, Any]:
    """Pairwise overlap of these segments: sizes, intersections and Jaccard indexes.

    One grouped self-join of the membership table (bounded by the segments given)."""
    ids = [s.pk for s in segments]
    sizes = {s.pk: s.member_count for s in segments}
    both: dict[tuple[int, int], int] = {}
    if len(ids) >= 2:
        table = connection.ops.quote_name(SegmentMembership._meta.db_table)
        marks = ", ".join(["%s"] * len(ids))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT a.segment_id, b.segment_id, COUNT(*) FROM {table} a JOIN {table} b"
                f" ON a.profile_id = b.profile_id AND a.segment_id < b.segment_id"
                f" WHERE a.segment_id IN ({marks}) AND b.segment_id IN ({marks})"
                " GROUP BY a.segment_id, b.segment_id",
                [*ids, *ids],
            )
            both = {(a, b): n for a, b, n in cursor.fetchall()}
    matrix = []
    for a in segments:
        row = []
        for b in segments:
            if a.pk == b.pk:
                row.append({"intersection": sizes[a.pk], "jaccard": 1.0 if sizes[a.pk] else None})
                continue
            n = both.get((min(a.pk, b.pk), max(a.pk, b.pk)), 0)
            union = sizes[a.pk] + sizes[b.pk] - n
            row.append({"intersection": n, "jaccard": round(n / union, 3) if union else None})
        matrix.append(row)
    return {"segments": [s.key for s in segments], "matrix": matrix}
