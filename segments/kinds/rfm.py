"""RFM segments: the customers in chosen named RFM segments (scores from segments.rfm).

Config: {"segments": ["champions", "loyal", ...]}, any of the 11 slugs of segments.engine.rfm.
The scores themselves are refreshed by their own scheduled task, which then runs these segments.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from profiles.models import Profile

from ..engine.rfm import SEGMENT_LABELS
from ..models import SegmentKind
from . import ConfigError, KindResult, Progress, SegmentKindSpec, register


class RfmKind(SegmentKindSpec):
    key = SegmentKind.RFM.value
    position = 20
    label = SegmentKind.RFM.label

    def clean_config(self, config: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(config, dict):
            raise ConfigError("config", "Must be an object.")
        unknown = sorted(set(config) - {"segments"})
        if unknown:
            raise ConfigError(f"config.{unknown[0]}", "Unknown setting.")
        chosen = config.get("segments")
        if not isinstance(chosen, list) or not chosen:
            raise ConfigError(
                "config.segments", f"A non-empty list of RFM segments: {', '.join(SEGMENT_LABELS)}."
            )
        for index, slug in enumerate(chosen):
            if slug not in SEGMENT_LABELS:
                raise ConfigError(
                    f"config.segments[{index}]",
                    f"Unknown RFM segment {str(slug)[:50]!r}; one of {', '.join(SEGMENT_LABELS)}.",
                )
        return {"segments": sorted(set(chosen), key=list(SEGMENT_LABELS).index)}

    def compute(self, segment, *, progress: Progress) -> KindResult:
        chosen = (segment.config or {}).get("segments") or []
        scored = Profile.objects.filter(scores__has_key="rfm").order_by()
        members = set(scored.filter(scores__rfm__segment__in=chosen).values_list("pk", flat=True))
        scanned = scored.count()
        progress(scanned)
        return KindResult(members=members, scanned=scanned)

    def metrics_for_members(self, segment, member_ids: set[int]) -> dict[str, Any]:
        """The R x F grid of the whole scored base (counts), for the admin's heat map."""
        rows = (
            Profile.objects.filter(scores__has_key="rfm")
            .order_by()
            .values("scores__rfm__r", "scores__rfm__f")
            .annotate(n=Count("pk"))
        )
        grid = [[0] * 5 for _ in range(5)]
        for row in rows:
            r, f = row["scores__rfm__r"], row["scores__rfm__f"]
            if r in range(1, 6) and f in range(1, 6):
                grid[r - 1][f - 1] = row["n"]
        return {"rf_grid": grid, "segments": (segment.config or {}).get("segments", [])}


register(RfmKind())
