"""Reads of segments for the API, the admin and the delivery layer (profiles' reads:
profiles/selectors.py; a visitor's export: profiles/privacy.py)."""

from __future__ import annotations

from core.sqlin import filter_in

from .models import Segment, SegmentKind, SegmentMembership


def profile_segment_keys(*, profile_ids: list[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {pid: [] for pid in profile_ids}
    rows = filter_in(SegmentMembership.objects.all(), "profile", profile_ids, cast="bigint")
    rows = rows.values_list("profile_id", "segment__key")
    for pid, segment_key in rows:
        result[pid].append(segment_key)
    return result


def segments_active_condition() -> list[Segment]:
    return list(Segment.objects.filter(is_active=True, kind=SegmentKind.CONDITION))
