"""Daily KPIs per segment: size, entered, exited, conversion rate (purchasers / members),
revenue per member and average order value, kept as a time series (SegmentKpi) by a beat task.

Membership over the day is today's membership (the members' purchases that day are counted);
the size at the end of a past day is rebuilt from the history: the current size, minus those
who entered since, plus those who exited since.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils import timezone

from profiles.models import Event, EventType

from .models import MembershipEvent, Segment, SegmentKpi, SegmentMembership, SegmentMembershipChange


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def segment_kpi_compute(*, segment: Segment, day: date) -> SegmentKpi:
    """Compute and store (upsert) one segment's KPIs for one UTC day."""
    start, end = _bounds(day)
    now = timezone.now()
    changes = SegmentMembershipChange.objects.filter(segment=segment)
    in_day = dict(
        changes.filter(at__gte=start, at__lt=end)
        .values_list("event")
        .annotate(n=Count("pk"))
        .values_list("event", "n")
    )
    size = SegmentMembership.objects.filter(segment=segment).count()
    if end < now:
        since = dict(
            changes.filter(at__gte=end)
            .values_list("event")
            .annotate(n=Count("pk"))
            .values_list("event", "n")
        )
        size = max(
            0, size - since.get(MembershipEvent.ENTERED, 0) + since.get(MembershipEvent.EXITED, 0)
        )
    members = SegmentMembership.objects.filter(segment=segment).values("profile_id")
    purchases = Event.objects.filter(
        type=EventType.PURCHASE, occurred_at__gte=start, occurred_at__lt=end, profile_id__in=members
    ).aggregate(
        purchasers=Count("profile_id", distinct=True), orders=Count("pk"), revenue=Sum("value")
    )
    revenue = purchases["revenue"] or Decimal("0")
    orders = purchases["orders"]
    kpi, _ = SegmentKpi.objects.update_or_create(
        segment=segment,
        day=day,
        defaults={
            "size": size,
            "entered": in_day.get(MembershipEvent.ENTERED, 0),
            "exited": in_day.get(MembershipEvent.EXITED, 0),
            "purchasers": purchases["purchasers"],
            "orders": orders,
            "revenue": revenue,
            "conversion_rate": round(purchases["purchasers"] / size, 4) if size else None,
            "revenue_per_member": round(float(revenue) / size, 2) if size else None,
            "average_order_value": round(float(revenue) / orders, 2) if orders else None,
            "computed_at": now,
        },
    )
    return kpi


def segments_kpis_refresh(*, days: int = 2) -> int:
    """KPIs of every active segment for today and the days before (yesterday's final figures)."""
    today = timezone.now().astimezone(UTC).date()
    written = 0
    for segment in Segment.objects.filter(is_active=True):
        for back in range(days):
            segment_kpi_compute(segment=segment, day=today - timedelta(days=back))
            written += 1
    return written
