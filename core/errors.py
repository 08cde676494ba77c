"""One error shape for every API answer: {"errors": [{"field": ..., "message": ...}]}.

Used by DRF (EXCEPTION_HANDLER) for every app's endpoints, so clients parse one format.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ParseError):
        response.data = {"errors": [{"field": "body", "message": f"Malformed JSON: {exc.detail}"}]}
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"errors": flatten_errors(exc.detail)}
    else:
        detail = getattr(exc, "detail", str(exc))
        response.data = {"errors": flatten_errors(detail)}
    return response


def error_response(status: int, field: str, message: str, **headers: str) -> Response:
    response = Response({"errors": [{"field": field, "message": message}]}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response
