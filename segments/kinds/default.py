"""The default segment: visitors no other active segment claims ("unclassified"), so that a
placement can target them on purpose. Runs after every other kind (it depends on them)."""

from __future__ import annotations

from profiles.models import Profile

from ..models import SegmentKind, SegmentMembership
from . import KindResult, Progress, SegmentKindSpec, register


class DefaultKind(SegmentKindSpec):
    key = SegmentKind.DEFAULT.value
    position = 90
    label = SegmentKind.DEFAULT.label
    runs_last = True

    def compute(self, segment, *, progress: Progress) -> KindResult:
        claimed = (
            SegmentMembership.objects.filter(segment__is_active=True)
            .exclude(segment__kind=self.key)
            .values("profile_id")
        )
        members = set(
            Profile.objects.order_by().exclude(pk__in=claimed).values_list("pk", flat=True)
        )
        scanned = Profile.objects.count()
        progress(scanned)
        return KindResult(members=members, scanned=scanned)


register(DefaultKind())
