"""One error shape for every API answer: {"errors": [{"field": ..., "message": ...}]}.

Services raise the domain errors below (`MosaicError` and its kinds), which carry their HTTP
status, the field to name and, when the caller should come back, `Retry-After`. One DRF exception
handler (EXCEPTION_HANDLER) maps them, DRF's own exceptions and a Redis failure nobody translated
to that shape; views translate nothing by hand. Django-level failures under /api/ (an unknown path,
an oversized body, a server error) answer the same shape through `api_error_view`
(config/urls.py's handler400/404/500).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import pydantic
import redis
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response

from core.logs import warn_limited

from . import metrics

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# A Redis failure no service translated: the store is likely back within seconds.
REDIS_RETRY_AFTER_SECONDS = 5


class MosaicError(Exception):
    """A refusal a client can act on: its status, the field it concerns, a message, and how many
    seconds to wait before retrying (`Retry-After`) when that helps."""

    status: int = 400
    field: str = "body"
    message: str = "Invalid request."
    retry_after: int | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        if message is not None:
            self.message = message
        if field is not None:
            self.field = field
        if retry_after is not None:
            self.retry_after = retry_after
        super().__init__(self.message)


class InvalidInput(MosaicError):
    status = 400


class Forbidden(MosaicError):
    status = 403
    message = "Not allowed."


class NotFound(MosaicError):
    status = 404
    message = "Not found."


class Conflict(MosaicError):
    status = 409
    message = "Conflicts with the current state."


class PayloadTooLarge(MosaicError):
    status = 413
    message = "Request body too large."


class Unavailable(MosaicError):
    """A store Mosaic needs does not answer (or is busy): nothing was done, retry later."""

    status = 503
    message = "Service temporarily unavailable; nothing was done, retry later."
    retry_after = REDIS_RETRY_AFTER_SECONDS


def unavailable_on_redis_error(message: str, *, field: str, retry_after: int | None = None):
    """Decorate a service: a Redis failure inside it is raised as `Unavailable` with this message
    (what was not done), the field and Retry-After, so that every caller (API view, admin action,
    command) gets the same domain error instead of a transport exception."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except redis.RedisError as exc:
                raise Unavailable(message, field=field, retry_after=retry_after) from exc

        return wrapper

    return decorate


def error_body(field: str, message: str) -> dict[str, list[dict[str, str]]]:
    return {"errors": [{"field": field, "message": message}]}


def flatten_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error detail into a flat list with dotted/indexed field paths."""
    if isinstance(detail, dict):
        out: list[dict[str, str]] = []
        for name, sub in detail.items():
            if name in ("non_field_errors", "detail"):
                field = prefix or "body"
            elif isinstance(name, int):  # ListField errors are keyed by index
                field = f"{prefix}[{name}]"
            else:
                field = f"{prefix}.{name}" if prefix else str(name)
            out.extend(flatten_errors(sub, field))
        return out
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [{"field": prefix or "body", "message": str(item)} for item in detail]
        out = []
        for index, sub in enumerate(detail):
            if sub:
                out.extend(flatten_errors(sub, f"{prefix}[{index}]"))
        return out
    return [{"field": prefix or "body", "message": str(detail)}]


# Lines of one 400 answer for a declared schema (core.schema): enough to fix a request, bounded.
MAX_SCHEMA_ERRORS = 20
_SCHEMA_MESSAGES = {
    "missing": "This field is required.",
    "extra_forbidden": "Unknown field.",
    "model_type": "Expected a JSON object.",
    "model_attributes_type": "Expected a JSON object.",
    "dict_type": "Expected a JSON object.",
    "list_type": "Expected a list.",
}


def schema_field(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the error shape names fields: `placements[0]`,
    `context.device`; `body` for the whole body."""
    field = ""
    for part in loc:
        if isinstance(part, int):
            field += f"[{part}]"
        else:
            field = f"{field}.{part}" if field else str(part)
    return field or "body"


def schema_errors(exc: pydantic.ValidationError) -> list[dict[str, str]]:
    """A declared schema's refusal (core.schema) in the one error shape, one line per field."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return [
        {
            "field": schema_field(error["loc"]),
            "message": _SCHEMA_MESSAGES.get(error["type"], error["msg"]),
        }
        for error in errors[:MAX_SCHEMA_ERRORS]
    ]


def _mosaic_response(exc: MosaicError) -> Response:
    metrics.incr("mosaic_api_errors_total", status=str(exc.status), reason=type(exc).__name__)
    response = Response(error_body(exc.field, exc.message), status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, redis.RedisError):
        warn_limited(logger, "api-redis-down", "api: Redis unavailable, answered 503")
        exc = Unavailable()
    if isinstance(exc, pydantic.ValidationError):  # a declared schema refused the request
        metrics.incr("mosaic_api_errors_total", status="400", reason="ValidationError")
        return Response({"errors": schema_errors(exc)}, status=400)
    if isinstance(exc, MosaicError):
        if exc.status >= 500:
            logger.warning("api: refused, %s unavailable", exc.field, extra={"status": exc.status})
        return _mosaic_response(exc)
    if isinstance(exc, RequestDataTooBig):
        return _mosaic_response(PayloadTooLarge())
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is unreachable (or went away mid-call): the transaction did not commit.
        warn_limited(logger, "api-database-down", "api: database unavailable, answered 503")
        return _mosaic_response(
            Unavailable("Database unavailable; nothing was changed, retry later.", field="database")
        )
    # Imported here: rest_framework.views loads the authentication classes (access), whose
    # services raise these error types; at module level that import would be circular.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    metrics.incr(
        "mosaic_api_errors_total", status=str(response.status_code), reason=type(exc).__name__
    )
    if isinstance(exc, exceptions.ParseError):
        field = getattr(exc, "field", "body")  # core.parsers names a string that is not Unicode
        response.data = {"errors": [{"field": field, "message": f"Malformed JSON: {exc.detail}"}]}
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"errors": flatten_errors(exc.detail)}
    else:
        detail = getattr(exc, "detail", str(exc))
        response.data = {"errors": flatten_errors(detail)}
    return response


_DJANGO_ERRORS: dict[int, tuple[str, Any]] = {
    400: ("Bad request.", defaults.bad_request),
    403: ("Forbidden.", defaults.permission_denied),
    404: ("No such endpoint.", defaults.page_not_found),
    500: ("Server error; it has been logged.", defaults.server_error),
}


def api_error_view(status: int):
    """A Django error handler (handler400/403/404/500) answering the one JSON error shape under
    /api/ and Django's own page elsewhere (the admin and the demo keep their HTML)."""
    message, fallback = _DJANGO_ERRORS[status]

    def view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            if status == 500:
                return fallback(request)
            return fallback(request, exception)
        if isinstance(exception, RequestDataTooBig):
            error = PayloadTooLarge()
            metrics.incr("mosaic_api_errors_total", status=str(error.status), reason="too_large")
            return JsonResponse(error_body(error.field, error.message), status=error.status)
        metrics.incr("mosaic_api_errors_total", status=str(status), reason=f"http_{status}")
        field = "path" if status == 404 else "body"
        return JsonResponse(error_body(field, message), status=status)

    view.__name__ = f"api_error_{status}"
    return view
