"""ETag and If-Match for the management API (content, segments, experiments): a client that
read an object may only write it back if nobody changed it since (no lost updates).

The ETag is a digest of the object's representation. Writes (PUT, PATCH, DELETE) must carry
If-Match: without it the answer is 428 Precondition Required, with a stale tag 412 Precondition
Failed. A PUT or PATCH whose tag is stale but whose change is already the stored state (a retry
after a lost answer) succeeds, as RFC 9110 §13.1.1 allows, so a repeated PUT is idempotent.
"""

from __future__ import annotations

import hashlib
import json

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers, status
from rest_framework.response import Response

from .errors import error_body


def error_response(status_code: int, field: str, message: str, **headers: str) -> Response:
    """An answer in the one error shape, with headers (the 412's current ETag)."""
    response = Response(error_body(field, message), status=status_code)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def etag_of(representation: dict) -> str:
    canonical = json.dumps(representation, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def if_match_tags(request) -> list[str] | None:
    """The tags of If-Match (["*"] for any), or None when the header is absent."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def precondition_problem(request, current_etag: str):
    """None when the write may go ahead, else the 428/412 answer (the project's error shape)."""
    tags = if_match_tags(request)
    if tags is None:
        return error_response(
            status.HTTP_428_PRECONDITION_REQUIRED,
            "If-Match",
            "Send If-Match with the ETag of your last read of this object (or *), so that "
            "nobody's change is overwritten unseen.",
        )
    if "*" in tags or current_etag in tags:
        return None
    return error_response(
        status.HTTP_412_PRECONDITION_FAILED,
        "If-Match",
        "The object changed since you read it: read it again (its ETag is in this answer's "
        "ETag header), reapply your change, and retry.",
        ETag=current_etag,
    )


def write_precondition(request, *, current_tag: str, wanted_tag: str | None = None):
    """The answer that stops a write, or None when it may go ahead: a PUT/PATCH whose result
    (`wanted_tag`, the ETag the object would have) is the current state needs nothing written
    and is answered by the caller as a read; otherwise If-Match must be present (428) and
    current (412)."""
    if wanted_tag is not None and wanted_tag == current_tag and if_match_tags(request) is not None:
        return None
    return precondition_problem(request, current_tag)


# --- OpenAPI ------------------------------------------------------------------------------------


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    # The documented body shape, named like DRF's `errors` property on purpose.
    errors = ErrorItemSerializer(many=True)  # type: ignore[assignment]


def in_status_order(responses: dict) -> dict:
    """An endpoint's documented answers, listed by status in the OpenAPI document whatever
    order they were composed in (with KEYED_CALL_ERRORS, say)."""
    return dict(sorted(responses.items()))


# The refusals every key-authenticated call (decide, events) shares, documented once.
KEYED_CALL_ERRORS = {
    401: OpenApiResponse(
        ErrorSerializer,
        description="No key while keys are required, or an unknown or revoked key "
        "(field `api_key`).",
    ),
    413: OpenApiResponse(ErrorSerializer, description="Body too large (field `body`)."),
    429: OpenApiResponse(
        ErrorSerializer,
        description="Rate limit exceeded (field `api_key`); `Retry-After` says when to come back.",
    ),
}


IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="The ETag of your last read of the object (or *). Missing: 428; stale: 412.",
    examples=[OpenApiExample("Last read", value='"3f2a9c0e6d1b4a7f8e5c2d9b0a1f3e4c"')],
)
ETAG_HEADER = OpenApiParameter(
    "ETag",
    str,
    OpenApiParameter.HEADER,
    description="A digest of the object's editable fields: send it back in If-Match to write.",
    response=[200, 201, 412],
)
PRECONDITION_FAILED = OpenApiResponse(
    ErrorSerializer,
    description="If-Match is stale: the object changed since it was read. The answer's ETag "
    "header is the current one: read again, reapply, retry.",
    examples=[
        OpenApiExample(
            "Stale If-Match",
            value={
                "errors": [
                    {
                        "field": "If-Match",
                        "message": "The object changed since you read it: read it again (its "
                        "ETag is in this answer's ETag header), reapply your change, and retry.",
                    }
                ]
            },
            response_only=True,
            status_codes=["412"],
        )
    ],
)
PRECONDITION_REQUIRED = OpenApiResponse(
    ErrorSerializer,
    description="If-Match is missing.",
    examples=[
        OpenApiExample(
            "No If-Match",
            value={
                "errors": [
                    {
                        "field": "If-Match",
                        "message": "Send If-Match with the ETag of your last read of this "
                        "object (or *), so that nobody's change is overwritten unseen.",
                    }
                ]
            },
            response_only=True,
            status_codes=["428"],
        )
    ],
)
