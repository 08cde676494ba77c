"""The decide endpoint: GET with query parameters or POST with a JSON body."""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import request_is_secret_or_staff
from experiments.services import ExposureRecord, exposures_log
from personalization.context import UTM_KEYS, build_request_context
from personalization.decide import Decision, Visitor, decide
from personalization.snapshot import holder
from personalization.visitors import visitor_load
from segments.consent import purpose_allowed

from .serializers import (
    MAX_PLACEMENTS,
    DecideRequestSerializer,
    DecideResponseSerializer,
)


def _log_exposures(visitor: Visitor, profile_status: str, decisions: dict[str, Decision]) -> None:
    """Buffer the experiment arms served (analytics consent permitting); never raises."""
    served = [d.experiment for d in decisions.values() if d.experiment is not None]
    if not served or not visitor.key:
        return
    consent = (visitor.profile or {}).get("consent")
    if not purpose_allowed(consent, "analytics"):
        return
    exposures_log(
        records=[ExposureRecord(e["key"], e["arm"], visitor.key) for e in served],
        redis_available=profile_status != "unavailable",
    )


_SIMPLE_KEY = re.compile(r"[-a-zA-Z0-9_]{1,100}")
_SIMPLE_CONTEXT = {"url": 2000, "referrer": 2000, "locale": 35}
_DEVICES = ("", "mobile", "tablet", "desktop")


def _simple_text(value: object, max_length: int) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= max_length
        and value == value.strip()
        and "\x00" not in value
    )


def _fast_validated(body: dict) -> dict | None:
    """The validated form of a plainly valid GET body without building the DRF serializer
    (a measurable share of a decide); None whenever anything is unusual, and the serializer then
    gives its usual answer, errors included. Accepts a strict subset of what it accepts."""
    if not body.keys() <= {"placements", "visitor", "context"}:
        return None
    placements = body.get("placements")
    if not placements or len(placements) > MAX_PLACEMENTS:
        return None
    if not all(_SIMPLE_KEY.fullmatch(p) for p in placements):
        return None
    data: dict = {"placements": placements, "explain": False}
    if "visitor" in body:
        if not _simple_text(body["visitor"], 200):
            return None
        data["visitor"] = body["visitor"]
    if "context" in body:
        context = body["context"]
        validated: dict = {}
        for name, value in context.items():
            if name == "device":
                if value not in _DEVICES:
                    return None
            elif name not in _SIMPLE_CONTEXT or not _simple_text(value, _SIMPLE_CONTEXT[name]):
                return None
            validated[name] = value
        data["context"] = validated
    return data


def _query_to_body(params) -> dict:
    body: dict = {}
    if "placements" in params:
        body["placements"] = [p.strip() for p in params["placements"].split(",") if p.strip()]
    if "visitor" in params:
        body["visitor"] = params["visitor"]
    if "explain" in params:
        body["explain"] = params["explain"]
    context = {
        name: params[name] for name in ("url", "referrer", "locale", "device") if name in params
    }
    utm = {k: params[f"utm_{k}"] for k in UTM_KEYS if f"utm_{k}" in params}
    if utm:
        context["utm"] = utm
    if context:
        body["context"] = context
    return body


class DecideView(APIView):
    """Chooses, renders and explains the content of each requested placement for a visitor."""

    @extend_schema(
        parameters=[
            OpenApiParameter("placements", OpenApiTypes.STR, description="Comma-separated keys."),
            OpenApiParameter("visitor", OpenApiTypes.STR, required=False),
            OpenApiParameter("url", OpenApiTypes.STR, required=False),
            OpenApiParameter("locale", OpenApiTypes.STR, required=False),
            OpenApiParameter("device", OpenApiTypes.STR, required=False),
        ],
        responses=DecideResponseSerializer,
    )
    def get(self, request):
        return self._answer(request, _query_to_body(request.query_params), fast=True)

    @extend_schema(request=DecideRequestSerializer, responses=DecideResponseSerializer)
    def post(self, request):
        return self._answer(request, request.data)

    def _answer(self, request, body, fast: bool = False) -> Response:
        data = _fast_validated(body) if fast else None
        if data is None:
            serializer = DecideRequestSerializer(data=body)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        ctx = data.get("context", {})
        request_context = build_request_context(
            url=ctx.get("url", ""),
            referrer=ctx.get("referrer", ""),
            user_agent=request.headers.get("User-Agent", ""),
            accept_language=request.headers.get("Accept-Language", ""),
            locale=ctx.get("locale", ""),
            device=ctx.get("device", ""),
            utm=ctx.get("utm"),
            attributes=ctx.get("attributes"),
        )
        visitor, profile_status = visitor_load(visitor_id=data.get("visitor"))
        # Explanations reveal rules: only for staff (secret API keys arrive with the keys issue).
        # Explanations reveal targeting rules: secret server keys and staff only.
        explain = data["explain"] and request_is_secret_or_staff(request)
        snapshot = holder.get()
        decisions = decide(
            snapshot=snapshot,
            placement_keys=list(dict.fromkeys(data["placements"])),
            visitor=visitor,
            request_context=request_context,
            explain=explain,
        )
        # A second Redis round trip, after the answer is computed (the arm is only known now).
        _log_exposures(visitor, profile_status, decisions)
        return Response(
            {
                "profile": profile_status,
                "personalization": visitor.personalization_allowed and visitor.profile is not None,
                "snapshot": snapshot.version,
                "placements": {key: d.as_dict() for key, d in decisions.items()},
            }
        )
