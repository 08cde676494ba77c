"""Ingestion's own rows: events stored by stage 1 and not yet folded in by stage 2.

Moved out of segments (issue #12) with its table (`db_table`); the move is a state-only
migration (ingestion 0001, segments 0012).
"""

from __future__ import annotations

from django.db import models

from profiles.models import Event


class PendingAggregate(models.Model):
    """An event stored but not yet folded into its profile's aggregates (ingestion's stage 2).

    Stage 1 writes the event and this row in one transaction; stage 2 deletes the row in the
    transaction that folds the event in, so each event is counted exactly once whatever crashes.
    The row carries what the fold needs (a copy of the event's fields), so stage 2 reads only
    this table. No database constraint to the event (a COPY of thousands of rows would check
    each); deleting an event through the ORM deletes its row (CASCADE, done by Django).
    """

    event = models.OneToOneField(
        Event, on_delete=models.CASCADE, db_constraint=False, primary_key=True, related_name="+"
    )
    # The profile the event was stored for; a merge that moves the event deletes this row.
    profile_id = models.BigIntegerField()
    event_uuid = models.UUIDField()
    type = models.CharField(max_length=32)
    # The event's occurred_at as microseconds since the Unix epoch: an integer reads back far
    # faster than a timestamp, and stage 2 reads thousands per run.
    occurred_us = models.BigIntegerField()
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    category = models.CharField(max_length=100, null=True)

    class Meta:
        db_table = "segments_pendingaggregate"  # its table in segments, kept

    def __str__(self) -> str:
        return f"pending {self.event_id}"
