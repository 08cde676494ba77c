"""Retention: events past MOSAIC_EVENT_RETENTION_DAYS deleted in bounded batches, aggregates
rebuilt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Max, Min, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from profiles.audit import audit_record
from profiles.models import AuditAction, Event, Profile
from profiles.services import profiles_refresh

from .aggregate import profiles_recompute_aggregates


@dataclass(frozen=True, slots=True)
class PurgeResult:
    batches: int
    deleted: int
    profiles: int
    complete: bool


def events_purge_expired(
    *, older_than: datetime, batch_size: int = 5000, max_batches: int = 20
) -> PurgeResult:
    """Delete events that occurred before `older_than`, oldest first, in bounded batches.

    Each batch is one transaction that also recomputes its profiles' aggregates, so a run cut
    short leaves consistent profiles; `complete` says whether anything older is left. Profiles
    are kept (they hold consent and traits) even when no event is left.
    """
    touched: set[int] = set()
    deleted = batches = 0
    complete = False
    for _ in range(max_batches):
        with transaction.atomic():
            rows = list(
                Event.objects.filter(occurred_at__lt=older_than)
                .order_by("occurred_at", "id")
                .values_list("pk", "profile_id")[:batch_size]
            )
            if not rows:
                complete = True
                break
            Event.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
            profile_ids = {profile_id for _, profile_id in rows}
            profiles_recompute_aggregates(profile_ids=list(profile_ids))
        batches += 1
        deleted += len(rows)
        touched |= profile_ids
        if len(rows) < batch_size:
            complete = True
            break
    _seen_dates_clamp(older_than=older_than)
    ids = sorted(touched)
    for start in range(0, len(ids), 1000):
        profiles_refresh(profile_ids=ids[start : start + 1000])
    if deleted:
        audit_record(
            action=AuditAction.RETENTION_PURGE,
            actor="system",
            details={
                "older_than": older_than.isoformat(),
                "events": deleted,
                "profiles": len(ids),
                "batches": batches,
                "complete": complete,
            },
        )
    return PurgeResult(batches, deleted, len(ids), complete)


def _seen_dates_clamp(*, older_than: datetime) -> int:
    """Profiles' first_seen and last_seen no older than what retention keeps: the earliest and
    latest event left, or the retention boundary when none is left (a purged date would still
    say when the visitor was active). Returns the profiles changed."""
    events = Event.objects.filter(profile_id=OuterRef("pk")).order_by().values("profile_id")
    earliest = Subquery(events.annotate(at=Min("occurred_at")).values("at")[:1])
    latest = Subquery(events.annotate(at=Max("occurred_at")).values("at")[:1])
    changed = Profile.objects.filter(first_seen__lt=older_than).update(
        first_seen=Coalesce(earliest, Value(older_than))
    )
    changed += Profile.objects.filter(last_seen__lt=older_than).update(
        last_seen=Coalesce(latest, Value(older_than))
    )
    return changed
