"""HTTP endpoint of ingestion: POST /api/v1/events (validated one by one, queued durably)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import flatten_errors
from core.logging import log_event

from . import queue, tasks
from .serializers import EventBatchSerializer, EventSerializer, event_fast_validate

logger = logging.getLogger(__name__)


class EventsView(APIView):
    """Accepts a batch of events: valid ones are queued durably, invalid ones listed by index."""

    @extend_schema(request=EventBatchSerializer, responses={202: dict, 400: dict, 503: dict})
    def post(self, request):
        events = _batch_events(request.data)
        accepted, rejected = [], []
        now, zone = timezone.now(), timezone.get_current_timezone()
        for index, raw in enumerate(events):
            # Plainly well-formed events skip the per-event DRF serializer (same result, a
            # fraction of the cost); anything else goes through it, which also words the errors.
            fast = event_fast_validate(raw, now=now, zone=zone)
            if fast is not None:
                accepted.append(fast)
                continue
            serializer = EventSerializer(data=raw)
            if serializer.is_valid():
                accepted.append(serializer.validated_data)
            else:
                rejected.append({"index": index, "errors": flatten_errors(serializer.errors)})
        if not accepted:
            return Response(
                {
                    "accepted": 0,
                    "rejected": rejected,
                    "errors": [{"field": "events", "message": "No valid event in the batch."}],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        queue.events_enqueue(events=accepted)  # Unavailable (503, Retry-After) if Redis is down
        log_event(logger, "events.accepted", accepted=len(accepted), rejected=len(rejected))
        transaction.on_commit(_trigger_ingestion)
        return Response(
            {"accepted": len(accepted), "rejected": rejected}, status=status.HTTP_202_ACCEPTED
        )


def _batch_events(data) -> list:
    """The envelope's events; a plain list within the limit skips EventBatchSerializer."""
    if type(data) is dict and data.keys() == {"events"}:
        events = data["events"]
        if type(events) is list and 0 < len(events) <= settings.MOSAIC_EVENT_MAX_BATCH:
            return events
    envelope = EventBatchSerializer(data=data)
    envelope.is_valid(raise_exception=True)
    return envelope.validated_data["events"]


def _trigger_ingestion() -> None:
    # The batch is already durable in Redis; if the trigger is lost, the beat safety net drains it.
    try:
        if queue.task_trigger_claim(tasks.INGEST_TRIGGER):
            tasks.events_ingest_pending.delay()
    except Exception:
        logger.warning("events: could not enqueue the ingestion task; beat will drain the queue")
