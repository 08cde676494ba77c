"""Segment management API: segments, their members (paginated, CSV) and their runs.

Secret API keys or staff only (never a browser's publishable key). Every refusal is a 4xx in
the project's one error shape, naming the field.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import ModelPermissionByRole
from core.conditional import (
    ETAG_HEADER,
    IF_MATCH,
    PRECONDITION_FAILED,
    PRECONDITION_REQUIRED,
    etag_of,
    precondition_problem,
    write_precondition,
)
from core.errors import Conflict, InvalidInput, NotFound
from core.parsers import FastJSONParser

from .. import segment_services
from ..guardrails import placements_overloaded, segment_warnings
from ..models import Segment, SegmentMembership, SegmentRun
from ..static_lists import (
    StaticListError,
    static_keys_from_csv,
    static_keys_from_ids,
    static_list_add,
    static_list_remove,
    text_lines,
)
from .serializers import (
    MemberSerializer,
    PageSerializer,
    SegmentRunSerializer,
    SegmentSerializer,
    StaticIdsSerializer,
)

ERRORS = {
    400: OpenApiResponse(
        description="Bad input; each error names its field.",
        examples=[
            OpenApiExample(
                "Unknown RFM segment",
                value={
                    "errors": [
                        {"field": "config.segments[1]", "message": "Unknown RFM segment 'kings'"}
                    ]
                },
            )
        ],
    ),
    403: OpenApiResponse(description="Not a secret key or staff."),
    404: OpenApiResponse(description="No such segment (field `key`)."),
}
WRITE_ERRORS = {**ERRORS, 412: PRECONDITION_FAILED, 428: PRECONDITION_REQUIRED}


def _segment_or_404(key: str) -> Segment:
    segment = Segment.objects.filter(key=key).first()
    if segment is None:
        raise NotFound(f"No segment {key[:100]!r}.", field="key")
    return segment


class _WritesChangeSegment:
    """Adding or removing list members and running a segment change it: they need the segment's
    change permission; reading members or runs needs only view."""

    request: Any

    @property
    def permission_action(self) -> str | None:
        return None if self.request.method in SAFE_METHODS else "change"


class _SegmentsAPIView(APIView):
    # A secret key or a staff session whose role holds the segment permission of the action
    # (view for reads; add/change/delete for writes): an Editor cannot change segments.
    permission_classes = [ModelPermissionByRole]
    permission_model = Segment
    publishable_key_allowed = False


# The fields a client edits: the ETag is their digest (a run changes member_count and
# computed_at, not the segment).
_TAGGED = ("key", "name", "description", "kind", "condition", "config", "is_active")


def _segment_tag(values: dict[str, Any]) -> str:
    return etag_of({name: values.get(name) for name in _TAGGED})


def _segment_values(segment: Segment) -> dict[str, Any]:
    return {name: getattr(segment, name) for name in _TAGGED}


def _author(request) -> str:
    return request.user.get_username()


def _tagged(segment: Segment, code: int = status.HTTP_200_OK, **context: Any) -> Response:
    return Response(
        SegmentSerializer(segment, context=context).data,
        status=code,
        headers={"ETag": _segment_tag(_segment_values(segment))},
    )


class SegmentListView(_SegmentsAPIView):
    @extend_schema(
        responses={200: SegmentSerializer(many=True), **ERRORS},
        parameters=[OpenApiParameter("kind", str, description="Only segments of this kind.")],
        summary="List segments",
    )
    def get(self, request):
        segments = Segment.objects.all().order_by("key")
        kind = request.query_params.get("kind")
        if kind is not None:
            segments = segments.filter(kind=kind[:32])
        overloaded = placements_overloaded()
        data = SegmentSerializer(
            segments[:1000], many=True, context={"overloaded": overloaded}
        ).data
        return Response({"count": len(data), "results": data})

    @extend_schema(
        request=SegmentSerializer,
        responses={201: SegmentSerializer, **ERRORS},
        parameters=[ETAG_HEADER],
        summary="Create a segment (the answer carries its ETag; a run is queued)",
    )
    def post(self, request):
        serializer = SegmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = segment_services.segment_create(
            data=serializer.validated_data, author=_author(request)
        )
        return _tagged(segment, status.HTTP_201_CREATED)


SEGMENT_PATCH_EXAMPLE = OpenApiExample(
    "Rename (with If-Match)",
    value={"name": "Cart abandoners (EU)"},
    request_only=True,
)


class SegmentDetailView(_SegmentsAPIView):
    @extend_schema(
        responses={200: SegmentSerializer, **ERRORS},
        parameters=[ETAG_HEADER],
        summary="Read a segment (the answer carries its ETag)",
    )
    def get(self, request, key: str):
        return _tagged(_segment_or_404(key))

    @extend_schema(
        request=SegmentSerializer,
        responses={200: SegmentSerializer, **WRITE_ERRORS},
        parameters=[IF_MATCH, ETAG_HEADER],
        examples=[SEGMENT_PATCH_EXAMPLE],
        summary="Change some fields of a segment (If-Match required)",
    )
    def patch(self, request, key: str):
        return self._update(request, key, partial=True)

    @extend_schema(
        request=SegmentSerializer,
        responses={200: SegmentSerializer, **WRITE_ERRORS},
        parameters=[IF_MATCH, ETAG_HEADER],
        summary="Replace a segment (idempotent; If-Match required)",
    )
    def put(self, request, key: str):
        return self._update(request, key, partial=False)

    def _update(self, request, key: str, *, partial: bool):
        segment = _segment_or_404(key)
        current = _segment_values(segment)
        serializer = SegmentSerializer(segment, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        wanted = {**current, **{k: v for k, v in data.items() if k in current}}
        current_tag, wanted_tag = _segment_tag(current), _segment_tag(wanted)
        problem = write_precondition(request, current_tag=current_tag, wanted_tag=wanted_tag)
        if problem is not None:
            return problem
        if wanted_tag == current_tag:
            # Already the stored state (a retried PUT): nothing written, no revision, no run.
            return _tagged(segment)
        segment = segment_services.segment_update(
            segment=segment, data=data, author=_author(request), comment="Saved through the API"
        )
        return _tagged(segment)

    @extend_schema(
        responses={204: None, **WRITE_ERRORS},
        parameters=[IF_MATCH],
        summary="Delete a segment (If-Match required)",
    )
    def delete(self, request, key: str):
        segment = _segment_or_404(key)
        problem = precondition_problem(request, _segment_tag(_segment_values(segment)))
        if problem is not None:
            return problem
        segment_services.segment_delete(segment=segment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentMembersView(_WritesChangeSegment, _SegmentsAPIView):
    parser_classes = [FastJSONParser, MultiPartParser]

    @extend_schema(
        parameters=[PageSerializer],
        responses={
            200: OpenApiResponse(
                MemberSerializer(many=True),
                description="A page of members, or with export=csv all of them as CSV.",
                examples=[
                    OpenApiExample(
                        "A page",
                        value={
                            "count": 1,
                            "page": 1,
                            "page_size": 100,
                            "next": None,
                            "results": [
                                {"profile": "5f2c…", "since": "2026-12-06T20:00:00Z", "score": None}
                            ],
                        },
                    )
                ],
            ),
            **ERRORS,
        },
        summary="List (or export) a segment's members",
    )
    def get(self, request, key: str):
        segment = _segment_or_404(key)
        params = PageSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        members = (
            SegmentMembership.objects.filter(segment=segment)
            .order_by("pk")
            .values_list("profile__key", "since", "score")
        )
        if params.validated_data.get("export") == "csv":
            return _members_csv(segment, members)
        page, size = params.validated_data["page"], params.validated_data["page_size"]
        total = members.count()
        rows = members[(page - 1) * size : page * size]
        results = [{"profile": k, "since": s, "score": sc} for k, s, sc in rows]
        more = page * size < total
        return Response(
            {
                "count": total,
                "page": page,
                "page_size": size,
                "next": page + 1 if more else None,
                "results": MemberSerializer(results, many=True).data,
            }
        )

    @extend_schema(
        request={
            "application/json": StaticIdsSerializer,
            "multipart/form-data": StaticIdsSerializer,
        },
        responses={200: dict, **ERRORS},
        summary="Add ids to a static segment (JSON lists or a CSV file); it runs after",
    )
    def post(self, request, key: str):
        return self._static_change(request, key, remove=False)

    @extend_schema(
        request=StaticIdsSerializer,
        responses={200: dict, **ERRORS},
        summary="Remove ids from a static segment; it runs after",
    )
    def delete(self, request, key: str):
        return self._static_change(request, key, remove=True)

    def _static_change(self, request, key: str, *, remove: bool):
        segment = _segment_or_404(key)
        data = request.data.dict() if hasattr(request.data, "dict") else request.data
        if hasattr(request.data, "getlist") and "file" in request.FILES:
            data = {**data, "file": request.FILES["file"]}
        serializer = StaticIdsSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        try:
            if "file" in values:
                id_type, keys = static_keys_from_csv(
                    text_lines(io.BufferedReader(values["file"])), id_type=values.get("id_type")
                )
            else:
                field = "visitor_ids" if "visitor_ids" in values else "user_ids"
                id_type = "visitor" if field == "visitor_ids" else "user"
                keys = static_keys_from_ids(values[field], field=field)
            if remove:
                result = static_list_remove(segment=segment, id_type=id_type, keys=keys)
            else:
                result = static_list_add(
                    segment=segment, id_type=id_type, keys=keys, replace=values["replace"]
                )
        except StaticListError as exc:
            raise InvalidInput(exc.message, field=exc.field) from None
        segment_services.segment_run_enqueue(segment=segment, trigger="api")
        return Response(
            {
                "id_type": result.id_type,
                "received": result.received,
                "added": result.added,
                "removed": result.removed,
                "list_size": result.size,
                "run": "queued",
            }
        )


def _members_csv(segment: Segment, members) -> StreamingHttpResponse:
    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["profile", "since", "score"])
        for profile_key, since, score in members.iterator(chunk_size=5000):
            writer.writerow([profile_key, since.isoformat(), "" if score is None else score])
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="segment-{segment.key}-members.csv"'
    return response


class SegmentRunsView(_WritesChangeSegment, _SegmentsAPIView):
    @extend_schema(
        parameters=[PageSerializer],
        responses={200: SegmentRunSerializer(many=True), **ERRORS},
        summary="List a segment's runs, newest first",
    )
    def get(self, request, key: str):
        segment = _segment_or_404(key)
        params = PageSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        page, size = params.validated_data["page"], params.validated_data["page_size"]
        runs = SegmentRun.objects.filter(segment=segment).order_by("-started_at", "-id")
        total = runs.count()
        rows = runs[(page - 1) * size : page * size]
        return Response(
            {
                "count": total,
                "page": page,
                "next": page + 1 if page * size < total else None,
                "results": SegmentRunSerializer(rows, many=True).data,
            }
        )

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(
                OpenApiTypes.OBJECT,
                examples=[OpenApiExample("Queued", value={"queued": True, "segment": "vip"})],
            ),
            **ERRORS,
        },
        summary="Run the segment now (queued on the worker; GET shows its progress)",
    )
    def post(self, request, key: str):
        segment = _segment_or_404(key)
        if not segment.is_active:
            raise Conflict("The segment is inactive; activate it first.", field="is_active")
        segment_services.segment_run_enqueue(segment=segment, trigger="api")
        return Response({"queued": True, "segment": segment.key}, status=status.HTTP_202_ACCEPTED)


class SegmentWarningsView(_SegmentsAPIView):
    @extend_schema(responses={200: dict, **ERRORS}, summary="Guardrail warnings of a segment")
    def get(self, request, key: str):
        segment = _segment_or_404(key)
        return Response({"segment": segment.key, "warnings": segment_warnings(segment=segment)})
