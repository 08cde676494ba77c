"""HTTP endpoint of ingestion: POST /api/v1/events (validated by its one schema, queued durably)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.conditional import KEYED_CALL_ERRORS, ErrorSerializer, in_status_order
from core.logging import log_event
from core.renderers import ORJSONRenderer

from . import queue, tasks
from .schemas import EventBatch, EventsAccepted, EventsRefused, events_validate

logger = logging.getLogger(__name__)

_EVENTS_ANSWERS = in_status_order(
    {
        202: OpenApiResponse(
            EventsAccepted, description="The valid events queued; the others by index."
        ),
        400: OpenApiResponse(
            EventsRefused,
            description="Nothing queued: the envelope is invalid (`events`, `body`; malformed "
            "JSON), or no event is (then each one's errors by index).",
        ),
        **KEYED_CALL_ERRORS,
        403: OpenApiResponse(
            ErrorSerializer, description="The key may not send events, or not from this Origin."
        ),
        415: OpenApiResponse(ErrorSerializer, description="Body not JSON."),
        503: OpenApiResponse(
            ErrorSerializer, description="Redis unavailable, nothing queued (`Retry-After`)."
        ),
    }
)


class EventsView(APIView):
    """Accepts a batch of events: valid ones are queued durably, invalid ones listed by index."""

    renderer_classes = [ORJSONRenderer]

    @extend_schema(request=EventBatch, responses=_EVENTS_ANSWERS)
    def post(self, request):
        # The one schema: the envelope (its refusal is a 400 by core.errors' handler), then the
        # events, refused ones by index so that a bad event does not refuse the others.
        events = EventBatch.model_validate(request.data).events
        accepted, rejected = events_validate(
            events, now=timezone.now(), zone=timezone.get_current_timezone()
        )
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


def _trigger_ingestion() -> None:
    # The batch is already durable in Redis; if the trigger is lost, the beat safety net drains it.
    try:
        if queue.task_trigger_claim(tasks.INGEST_TRIGGER):
            tasks.events_ingest_pending.delay()
    except Exception:
        logger.warning("events: could not enqueue the ingestion task; beat will drain the queue")
