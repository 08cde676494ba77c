"""Condition segments: a condition over the profile document (traits, aggregates, scores,
rolling windows, relative instants).

Kept current in real time by ingestion's second stage (services.segment_memberships_refresh)
and, for conditions that change with the clock alone, by the time-driven schedule; a run
re-evaluates every profile (after a condition change, or as a safety net) the same way, at one
`now`, and schedules each profile's next possible change.
"""

from __future__ import annotations

import time
from typing import Any

from rules import compile_condition, evaluation_clock

from .. import services
from ..models import SegmentKind
from . import KindResult, Progress, SegmentKindSpec, register
from .scan import profile_batches


class ConditionKind(SegmentKindSpec):
    key = SegmentKind.CONDITION.value
    position = 10
    label = SegmentKind.CONDITION.label
    realtime = True

    def clean_config(self, config: dict[str, Any]) -> dict[str, Any]:
        # The condition itself is the model's own field (validated there).
        return super().clean_config(config)

    def compute(self, segment, *, progress: Progress) -> KindResult:
        matches = compile_condition(segment.condition or {})
        # The real-time path's evaluation (services): windows folded at `now`, the clock
        # recording when the answer could next change.
        plan = services._EvaluationPlan.of([segment], [matches])
        members: set[int] = set()
        scanned = 0
        now = time.time()
        with evaluation_clock(now) as clock:
            for batch in profile_batches(
                "traits", "aggregates", "consent", "scores", progress=progress
            ):
                due: dict[int, float | None] = {}
                for profile in batch:
                    clock.next_change = None
                    attributes = services._evaluation_attributes(
                        profile=profile, plan=plan, now=now
                    )
                    if matches(attributes):
                        members.add(profile.pk)
                    if plan.timed:
                        due[profile.pk] = services._next_change(
                            clock.next_change, profile, plan, now
                        )
                # Only earlier instants are added, never removed here: another segment may
                # still need the profile re-evaluated.
                services._time_due_earliest(due=due)
                scanned += len(batch)
        return KindResult(members=members, scanned=scanned)


register(ConditionKind())
