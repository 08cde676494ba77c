"""Membership history and what follows a change (webhook triggers), for runs and real time.

Both writers of memberships, a segment run's swap (segments.runs) and ingestion's real-time
condition path (services.segment_memberships_refresh), call `membership_changes_record` inside
the transaction that changes the memberships: the history commits with them or not at all, and
trigger deliveries are enqueued only once it committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .models import MembershipEvent, SegmentMembershipChange


def membership_changes_record(
    *,
    entered: Iterable[tuple[int, int]],
    exited: Iterable[tuple[int, int]],
    at: datetime,
    run_id: int | None = None,
) -> int:
    """Record (segment id, profile id) entries and exits at `at`; enqueue their triggers on
    commit. Returns the number of changes recorded."""
    rows = [
        SegmentMembershipChange(
            segment_id=s, profile_id=p, event=MembershipEvent.ENTERED, at=at, run_id=run_id
        )
        for s, p in entered
    ] + [
        SegmentMembershipChange(
            segment_id=s, profile_id=p, event=MembershipEvent.EXITED, at=at, run_id=run_id
        )
        for s, p in exited
    ]
    if not rows:
        return 0
    SegmentMembershipChange.objects.bulk_create(rows, batch_size=1000)
    segment_ids = {row.segment_id for row in rows}
    from .webhooks import webhook_deliveries_create

    webhook_deliveries_create(segment_ids=segment_ids, changes=rows)
    return len(rows)
