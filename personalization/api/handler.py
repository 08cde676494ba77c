"""Decide served beside Django's full request cycle: a WSGI dispatcher and a lean Django handler.

Production's decide call (a browser's, with a publishable key, no cookie of Mosaic's) needs
nothing of the page machinery that every other path gets: no static files, no session, user,
CSRF token or messages, no login lockout, no URL resolution (its path is fixed). `decide_dispatched`
wraps the WSGI application (config/wsgi.py): a call to DECIDE_PATH without a session or CSRF
cookie goes to `DecideHandler`, every other request to Django's own handler, unchanged.

`DecideHandler` is Django's WSGIHandler (the same request object, signals, error handling and
answers) with two differences only:
- its middleware chain is settings.MIDDLEWARE less `NOT_FOR_DECIDE` (each named below with why it
  has nothing to do for such a call); every other middleware, present or added later, runs as
  Django would run it: security headers (SecurityMiddleware, XFrameOptionsMiddleware), CORS,
  `Vary: Cookie`, Content-Length;
- the URL is not resolved: its view is the one config/urls.py maps DECIDE_PATH to, looked up once.

The checks are not copied: the view is DecideView (keys, origins, rate limits, the one schema,
consent, exposures), and its refusals are answered by DRF and core.errors as on any path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, get_str_from_wsgi
from django.http import parse_cookie
from django.urls import resolve
from django.utils.module_loading import import_string

from personalization.middleware import DECIDE_PATH

# settings.MIDDLEWARE entries that have nothing to do for a decide call without a session or
# CSRF cookie (the only calls routed here):
NOT_FOR_DECIDE = frozenset(
    {
        # serves files under STATIC_URL only
        "whitenoise.middleware.WhiteNoiseMiddleware",
        # a CSRF token is neither checked (DRF's views are exempt; DRF checks it itself for a
        # session, and there is none) nor issued (decide never asks for one); without a CSRF
        # cookie there is none to read or renew
        "django.middleware.csrf.CsrfViewMiddleware",
        # stepped over for calls without a session cookie (personalization/middleware.py)
        "personalization.middleware.AuthenticationMiddleware",
        "personalization.middleware.MessageMiddleware",
        # acts only on a request whose login attempt was locked out; decide logs nobody in
        "axes.middleware.AxesMiddleware",
    }
)


def decide_middleware() -> list[str]:
    """The middleware a routed decide call goes through, in settings.MIDDLEWARE's order."""
    return [path for path in settings.MIDDLEWARE if path not in NOT_FOR_DECIDE]


class DecideHandler(WSGIHandler):
    """Django's WSGI handler for DECIDE_PATH alone, with `decide_middleware()`."""

    def load_middleware(self, is_async: bool = False) -> None:
        if is_async:
            raise NotImplementedError("DecideHandler serves WSGI only")
        self._view_middleware: list[Callable] = []
        self._template_response_middleware: list[Callable] = []
        self._exception_middleware: list[Callable] = []
        handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        for path in reversed(decide_middleware()):
            instance = import_string(path)(handler)
            # As BaseHandler.load_middleware: the hooks of each instance, in the same order.
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler
        # The one route (config/urls.py), resolved once rather than per request.
        self._match = resolve(DECIDE_PATH)

    def resolve_request(self, request):
        request.resolver_match = self._match
        return self._match


def _routed_to_decide(environ: dict) -> bool:
    if environ.get("PATH_INFO") != DECIDE_PATH:
        return False
    if not environ.get("HTTP_COOKIE"):
        return True
    # Read as Django reads request.COOKIES (the same decoding and parser).
    cookies = parse_cookie(get_str_from_wsgi(environ, "HTTP_COOKIE", ""))
    return settings.SESSION_COOKIE_NAME not in cookies and settings.CSRF_COOKIE_NAME not in cookies


def decide_dispatched(application: Callable) -> Callable:
    """`application` (Django's WSGI handler) with decide calls without a session or CSRF cookie
    answered by a DecideHandler instead."""
    decide_handler = DecideHandler()

    def dispatch(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if _routed_to_decide(environ):
            return decide_handler(environ, start_response)
        return application(environ, start_response)

    dispatch.decide_handler = decide_handler  # type: ignore[attr-defined]
    return dispatch
