"""Bounded scans of the profile table for kinds that evaluate every profile."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings

from profiles.models import Profile

from . import Progress


def profile_batches(
    *fields: str, progress: Progress, batch_size: int | None = None
) -> Iterator[list]:
    """Profiles in primary-key order, `batch_size` at a time (keyset pagination: each batch is
    one indexed query, whatever the table size); progress is reported after each batch."""
    size = batch_size or settings.MOSAIC_SEGMENT_RUN_BATCH
    last = 0
    scanned = 0
    while True:
        batch = list(Profile.objects.filter(pk__gt=last).order_by("pk").only("pk", *fields)[:size])
        if not batch:
            return
        yield batch
        scanned += len(batch)
        last = batch[-1].pk
        progress(scanned)
