"""Static segments: an uploaded list of visitor or user ids (stored pseudonymised).

Members are the profiles whose key (visitor ids) or user key (user ids) is on the list; ids of
visitors not seen yet join when a later run finds their profile.
"""

from __future__ import annotations

from core.sqlin import filter_in
from profiles.models import Profile

from ..models import SegmentKind, StaticIdType, StaticListEntry
from . import KindResult, Progress, SegmentKindSpec, register

_CHUNK = 5000


class StaticKind(SegmentKindSpec):
    key = SegmentKind.STATIC.value
    position = 30
    label = SegmentKind.STATIC.label

    def compute(self, segment, *, progress: Progress) -> KindResult:
        members: set[int] = set()
        scanned = 0
        for id_type, column in ((StaticIdType.VISITOR, "key"), (StaticIdType.USER, "user_key")):
            keys = list(
                StaticListEntry.objects.filter(segment=segment, id_type=id_type)
                .order_by()
                .values_list("key", flat=True)
            )
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                rows = filter_in(Profile.objects.order_by(), column, chunk, cast="text")
                members.update(rows.values_list("pk", flat=True))
                scanned += len(chunk)
                progress(scanned)
        return KindResult(members=members, scanned=scanned, metrics={"list_ids": scanned})


register(StaticKind())
