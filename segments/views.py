"""HTTP endpoints of the segments domain: event collection."""

from __future__ import annotations

import logging

import redis
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from personalization.api.errors import error_response, flatten_errors

from . import services, tasks
from .serializers import EventBatchSerializer, EventSerializer

logger = logging.getLogger(__name__)


class EventsView(APIView):
    """Accepts a batch of events: valid ones are queued durably, invalid ones listed by index."""

    @extend_schema(request=EventBatchSerializer, responses={202: dict, 400: dict, 503: dict})
    def post(self, request):
        envelope = EventBatchSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        accepted, rejected = [], []
        for index, raw in enumerate(envelope.validated_data["events"]):
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
        try:
            services.events_enqueue(events=accepted)
        except redis.RedisError:
            logger.warning("events: Redis unavailable, batch refused with 503")
            return error_response(
                503,
                "events",
                "Event queue unavailable; nothing was stored, retry later.",
                Retry_After="5",
            )
        transaction.on_commit(_trigger_ingestion)
        return Response(
            {"accepted": len(accepted), "rejected": rejected}, status=status.HTTP_202_ACCEPTED
        )


def _trigger_ingestion() -> None:
    # The batch is already durable in Redis; if the trigger is lost, the beat safety net drains it.
    try:
        tasks.events_ingest_pending.delay()
    except Exception:
        logger.warning("events: could not enqueue the ingestion task; beat will drain the queue")
