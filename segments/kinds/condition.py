"""Condition segments: a condition over the profile document (traits, aggregates, scores).

Kept current in real time by ingestion's second stage (services.segment_memberships_refresh);
a run re-evaluates every profile (after a condition change, or as time passes).
"""

from __future__ import annotations

from typing import Any

from rules import compile_condition

from ..models import SegmentKind
from ..selectors import profile_document
from . import KindResult, Progress, SegmentKindSpec, register
from .scan import profile_batches


class ConditionKind(SegmentKindSpec):
    key = SegmentKind.CONDITION.value
    label = SegmentKind.CONDITION.label
    realtime = True

    def clean_config(self, config: dict[str, Any]) -> dict[str, Any]:
        # The condition itself is the model's own field (validated there).
        return super().clean_config(config)

    def compute(self, segment, *, progress: Progress) -> KindResult:
        matches = compile_condition(segment.condition or {})
        members: set[int] = set()
        scanned = 0
        for batch in profile_batches(
            "traits", "aggregates", "consent", "scores", progress=progress
        ):
            for profile in batch:
                if matches({"profile": profile_document(profile=profile, segment_keys=[])}):
                    members.add(profile.pk)
            scanned += len(batch)
        return KindResult(members=members, scanned=scanned)


register(ConditionKind())
