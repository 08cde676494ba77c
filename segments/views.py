"""HTTP endpoints of the segments domain: event collection, consent and the privacy endpoints."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import ModelPermissionByRole
from core.errors import NotFound, flatten_errors
from core.logging import log_event
from core.pseudonym import pseudonymize

from . import privacy, services, tasks
from .models import Profile
from .serializers import (
    ConsentSerializer,
    EventBatchSerializer,
    EventSerializer,
    VisitorPathSerializer,
    event_fast_validate,
)

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
        services.events_enqueue(events=accepted)  # Unavailable (503, Retry-After) if Redis is down
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
        if services.task_trigger_claim(tasks.INGEST_TRIGGER):
            tasks.events_ingest_pending.delay()
    except Exception:
        logger.warning("events: could not enqueue the ingestion task; beat will drain the queue")


class ConsentView(APIView):
    """Records a visitor's consent choices; `Sec-GPC: 1` forces marketing off and is recorded."""

    @extend_schema(request=ConsentSerializer, responses={201: dict, 400: dict, 503: dict})
    def post(self, request):
        serializer = ConsentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        gpc = request.headers.get("Sec-GPC", "").strip() == "1"
        record = privacy.consent_record(
            profile_key=pseudonymize(data["visitor"]),
            purposes=dict(data["purposes"]),
            source=data["source"],
            policy_version=data["policy_version"],
            gpc=gpc,
            actor=_actor(request),
        )
        log_event(logger, "consent.recorded", source=data["source"], gpc=gpc, **record.purposes)
        return Response(
            {
                "consent": record.purposes,
                "gpc": record.gpc,
                "recorded_at": record.recorded_at.isoformat(),
            },
            status=status.HTTP_201_CREATED,
        )


class _PrivacyView(APIView):
    # These endpoints hand out or destroy a visitor's data: secret server keys and staff only,
    # never a browser's publishable key, whatever MOSAIC_REQUIRE_API_KEY says.
    # The caller's role must also allow it: segments.export_profile / segments.erase_profile.
    permission_classes = [ModelPermissionByRole]
    permission_model = Profile

    def _visitor(self, visitor: str) -> str:
        serializer = VisitorPathSerializer(data={"visitor": visitor})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["visitor"]


class ProfileExportView(_PrivacyView):
    """Everything Mosaic holds on a visitor: profile, events, consent, segments, Redis."""

    permission_action = "export"

    @extend_schema(responses={200: dict, 400: dict, 403: dict, 404: dict, 503: dict})
    def get(self, request, visitor: str):
        visitor = self._visitor(visitor)
        data = privacy.profile_export(profile_key=pseudonymize(visitor), actor=_actor(request))
        if data is None:
            raise NotFound("Mosaic holds no data on this visitor.", field="visitor")
        log_event(logger, "profile.exported", events=len(data.get("events", ())))
        return Response(data)


class ProfileEraseView(_PrivacyView):
    """Erases a visitor from every store; calling it again answers `erased: false`."""

    permission_action = "erase"

    @extend_schema(responses={200: dict, 400: dict, 403: dict, 503: dict})
    def delete(self, request, visitor: str):
        visitor = self._visitor(visitor)
        # Redis down or ingestion busy: Unavailable (503, Retry-After), nothing erased
        result = privacy.profile_erase(profile_key=pseudonymize(visitor), actor=_actor(request))
        log_event(logger, "profile.erased", erased=result.erased, **result.counts)
        return Response(
            {"erased": result.erased, "erasure_id": result.erasure_id, "counts": result.counts}
        )


def _actor(request) -> str:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username() or "api"
    return "api"
