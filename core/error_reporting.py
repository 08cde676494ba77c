"""Optional error reporting to Sentry, or any server that speaks its protocol (issue #12, item 5).

Off unless ``MOSAIC_SENTRY_DSN`` is set (config/settings/env.py validates it; the settings call
``error_reporting_start``). sentry-sdk is an optional extra: ``pip install -e ".[sentry]"``.

What an event may carry: the exception (type, message, stack frames without their local
variables), the route, the method and the path as the access log scrubs it. Never personal data:
no cookies, headers, body, query string, user or client address (``send_default_pii`` off and the
request reduced here), no Celery task arguments, and every visitor or user id the request carried
(query string, JSON body, the profile path) replaced by ``[visitor]`` wherever else it appears in
the event (an exception message, a breadcrumb).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import suppress
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from core.access_log import scrubbed_path, scrubbed_url

# Request fields that hold a visitor's or a user's id in Mosaic's APIs (decide's ?visitor=,
# events, identify, static lists).
ID_FIELDS = frozenset(
    {"visitor", "visitor_id", "visitor_ids", "user", "user_id", "user_ids", "user_token"}
)
REDACTED = "[visitor]"
# The request headers an event keeps: none of them names a visitor.
KEPT_HEADERS = frozenset({"Content-Type", "Content-Length", "Accept"})
_PROFILE_PATH = re.compile(r"^/api/v\d+/profiles/(.+?)(?:/export/?)?$")
# JSON bodies up to this size are read for the ids they hold (within Django's own upload limit).
BODY_READ_LIMIT = 64 * 1024

# The ids the request being served carries, for an error event raised while serving it.
_request_ids_var: ContextVar[frozenset[str]] = ContextVar("mosaic_request_ids", default=frozenset())


class RequestIdsRemembered:
    """Middleware, installed first when error reporting is on: remembers the visitor and user ids
    the request carries (query string, profile path, a JSON body), so that an error event raised
    while it is served can redact them even where sentry-sdk did not attach the request."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        token = _request_ids_var.set(frozenset(_live_request_ids(request)))
        try:
            return self.get_response(request)
        finally:
            _request_ids_var.reset(token)

    def decide_edge_steps(self):
        """Its steps for the decide edge (personalization/api/handler.py), which calls a
        middleware's steps rather than its __call__: the ids remembered before the view, forgotten
        once the answer (an error's included, reported before) has come back through."""

        def remember(request):
            request._mosaic_request_ids_token = _request_ids_var.set(
                frozenset(_live_request_ids(request))
            )

        def forget(request, response):
            token = getattr(request, "_mosaic_request_ids_token", None)
            if token is not None:
                _request_ids_var.reset(token)
            return response

        return remember, forget


def _live_request_ids(request) -> set[str]:
    ids = {
        value
        for key, values in request.GET.lists()
        if key.lower() in ID_FIELDS
        for value in values
        if value
    }
    if match := _PROFILE_PATH.match(request.path):
        ids.update({match[1], unquote(match[1])})
    length = request.META.get("CONTENT_LENGTH") or "0"
    if (
        request.content_type == "application/json"
        and length.isdigit()
        and 0 < int(length) <= BODY_READ_LIMIT
    ):
        with suppress(ValueError):
            # Cached by Django: the views read the same bytes afterwards.
            ids.update(_ids_in(json.loads(request.body)))
    return ids


def _ids_in(value: Any, *, under_id_field: bool = False) -> Iterator[str]:
    """Strings held under an id field anywhere in a decoded JSON body."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _ids_in(item, under_id_field=str(key).lower() in ID_FIELDS)
    elif isinstance(value, list):
        for item in value:
            yield from _ids_in(item, under_id_field=under_id_field)
    elif under_id_field and isinstance(value, str | int) and str(value):
        yield str(value)


def _request_ids(request: dict[str, Any]) -> set[str]:
    ids = {
        value
        for key, value in parse_qsl(str(request.get("query_string") or ""))
        if key.lower() in ID_FIELDS and value
    }
    data = request.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    ids.update(_ids_in(data))
    url = str(request.get("url") or "")
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    if match := _PROFILE_PATH.match(path):  # /api/v1/profiles/<visitor>[/export]
        ids.update({match[1], unquote(match[1])})
    return ids


def _redacted(value: Any, ids: list[str]) -> Any:
    if isinstance(value, str):
        for visitor_id in ids:
            value = value.replace(visitor_id, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: _redacted(item, ids) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item, ids) for item in value]
    return value


def _url_scrubbed(url: str) -> str:
    """The URL without query string, a visitor id in its path replaced (as the access log)."""
    parts = urlsplit(scrubbed_url(url))
    return parts._replace(path=scrubbed_path(parts.path or "/")).geturl()


def event_scrubbed(event: Any, hint: Any = None) -> Any:
    """sentry-sdk's ``before_send``: the event without personal data (see the module)."""
    request = event.get("request") or {}
    found = _request_ids(request) | _request_ids_var.get()
    # Longest first, so that an id inside another is not replaced first; shorter than 3
    # characters would redact ordinary words.
    ids = sorted((value for value in found if len(value) >= 3), key=len, reverse=True)
    if request:
        headers = request.get("headers") or {}
        kept: dict[str, Any] = {
            "headers": {name: value for name, value in headers.items() if name in KEPT_HEADERS}
        }
        if request.get("method"):
            kept["method"] = request["method"]
        if request.get("url"):
            kept["url"] = _url_scrubbed(str(request["url"]))
        event["request"] = kept
    event.pop("user", None)
    extra = event.get("extra")
    if isinstance(extra, dict) and isinstance(extra.get("celery-job"), dict):
        # Task arguments are ids of Mosaic's rows or keys; none is worth the risk of a raw id.
        extra["celery-job"] = {"task_name": extra["celery-job"].get("task_name")}
    return _redacted(event, ids) if ids else event


def error_reporting_start(dsn: str, *, environment: str) -> None:
    """Start sentry-sdk (Django, Celery, Redis and logging integrations switch on by themselves)."""
    try:
        import sentry_sdk
    except ImportError:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            'MOSAIC_SENTRY_DSN is set but sentry-sdk is not installed: pip install -e ".[sentry]"'
        ) from None

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="medium",  # read for the ids to redact, then dropped
        before_send=event_scrubbed,
        traces_sample_rate=None,
        auto_session_tracking=False,
        send_client_reports=False,
    )
