"""HTTP endpoints of profiles: consent, and the privacy endpoints (export, erase)."""

from __future__ import annotations

import logging

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import ModelPermissionByRole
from core.errors import NotFound
from core.logging import log_event
from core.pseudonym import pseudonymize

from . import privacy, services
from .models import Profile
from .serializers import ConsentSerializer, VisitorPathSerializer

logger = logging.getLogger(__name__)


class ConsentView(APIView):
    """Records a visitor's consent choices; `Sec-GPC: 1` forces marketing off and is recorded."""

    @extend_schema(request=ConsentSerializer, responses={201: dict, 400: dict, 503: dict})
    def post(self, request):
        serializer = ConsentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        gpc = request.headers.get("Sec-GPC", "").strip() == "1"
        record = services.consent_record(
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
    # The caller's role must also allow it: profiles.export_profile / profiles.erase_profile.
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
