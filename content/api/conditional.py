"""ETag and If-Match for the management API: a client that read an object may only write it
back if nobody changed it since (no lost updates).

The ETag is a digest of the object's representation. Writes (PUT, PATCH, DELETE) must carry
If-Match: without it the answer is 428 Precondition Required, with a stale tag 412 Precondition
Failed. A PUT or PATCH whose tag is stale but whose change is already the stored state (a retry
after a lost answer) succeeds, as RFC 9110 §13.1.1 allows, so a repeated PUT is idempotent.
"""

from __future__ import annotations

import hashlib
import json

from rest_framework import status
from rest_framework.response import Response

from core.errors import error_body


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
