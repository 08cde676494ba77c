"""Every answer under /api/ in the one error shape, also those Django gives before a view runs.

Django answers an unknown path (404), a body over DATA_UPLOAD_MAX_MEMORY_SIZE or with too many
fields (400) and an unhandled error (500) with HTML pages; an API client parses
{"errors": [{"field": ..., "message": ...}]} only. This middleware (last in MIDDLEWARE, so it
sees the view's exceptions and the resolver's 404) turns those into that shape.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpResponse

API_PREFIX = "/api/"
_MESSAGES = {
    400: ("body", "Bad request."),
    403: ("body", "Forbidden."),
    404: ("path", "No such API endpoint."),
    405: ("method", "Method not allowed."),
    413: ("body", "Request body too large."),
    500: ("server", "Internal error; nothing was changed by this call unless it said so."),
}


def api_error(status: int, field: str, message: str) -> HttpResponse:
    body = orjson.dumps({"errors": [{"field": field, "message": message}]})
    return HttpResponse(body, status=status, content_type="application/json")


class ApiErrorShapeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            field, message = _MESSAGES.get(response.status_code, ("body", "Request failed."))
            replaced = api_error(response.status_code, field, message)
            for header in ("Retry-After", "Allow", "WWW-Authenticate"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return api_error(413, "body", f"Request body larger than {limit:,} bytes.")
        if isinstance(exception, TooManyFieldsSent):
            return api_error(400, "body", "Too many fields in the request.")
        return None
