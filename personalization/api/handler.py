"""Decide served beside Django's request cycle: a WSGI dispatcher and the decide edge.

Production's decide call (a browser's, with a publishable key, no cookie of Mosaic's) needs
nothing of the page machinery that every other path gets: no static files, no session, user,
CSRF token or messages, no login lockout, no URL resolution (its path is fixed). `decide_dispatched`
wraps the WSGI application (config/wsgi.py): a call to DECIDE_PATH without a session or CSRF
cookie goes to `DecideEdge`, every other request to Django's own handler, unchanged.

`DecideEdge` answers such a call the way a feature-flag service's edge process evaluates flags:
Django's request object, the one view (DecideView: keys, origins, rate limits, the one schema,
consent, exposures; its refusals answered by DRF and core.errors as on any path) and Django's
own middleware, but none of Django's handler machinery around them (in process a keyed decide
took 229.6 µs, with the smaller changes made beside it, against 273.9 µs through Django's
handler; docs/benchmarks.md, "The decide edge"):
- the middleware are settings.MIDDLEWARE less `NOT_FOR_DECIDE` (each named below with why it has
  nothing to do for such a call), called as their steps (`edge_steps`): the same methods Django's
  chain would call (SecurityMiddleware's, CommonMiddleware's and XFrameOptionsMiddleware's
  process_request/process_response, django-cors-headers' preflight and headers, the session
  middleware's `Vary: Cookie`), in the same order, a response from a request step going back
  through the steps before it, exceptions answered by Django's response_for_exception where
  Django's chain would answer them. A middleware whose steps are not known (added later, with
  its own __call__) makes the edge hand every decide call to `DecideHandler`, Django's handler
  with the same middleware list: slower, never different;
- the URL is not resolved: its view is the one config/urls.py maps DECIDE_PATH to, looked up once;
- Django's request signals are not sent: their receivers' work that concerns a decide call, the
  database connection's age and health (CONN_MAX_AGE, CONN_HEALTH_CHECKS) and DEBUG's query log,
  is done by calling the same functions (django.db.close_old_connections, reset_queries). Their
  other receivers have nothing to do here: no cache connection is opened by a decide call (Mosaic
  uses Redis directly) and the URLconf is never switched.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from corsheaders.middleware import CorsMiddleware
from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_script_name, get_str_from_wsgi
from django.db import close_old_connections, reset_queries
from django.http import parse_cookie
from django.urls import resolve, set_script_prefix
from django.utils.deprecation import MiddlewareMixin
from django.utils.log import log_response
from django.utils.module_loading import import_string

from personalization.middleware import DECIDE_PATH, sessionless_decide_known

logger = logging.getLogger(__name__)

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


class Steps(NamedTuple):
    """A middleware as the edge runs it: `before(request)` (a response ends the way in) and
    `after(request, response)` (returns the response), either absent."""

    before: Callable[[Any], Any] | None
    after: Callable[[Any, Any], Any] | None


def edge_steps(instance: object) -> Steps | None:
    """How the edge runs middleware `instance`: the methods Django's chain would call for it, or
    None when they are not known (its own __call__: only Django's chain runs it faithfully)."""
    own = getattr(instance, "decide_edge_steps", None)
    if own is not None:
        # Mosaic's own middleware say themselves (the session middleware, error reporting's).
        return Steps(*own())
    cls = type(instance)
    if isinstance(instance, CorsMiddleware) and cls.__call__ is CorsMiddleware.__call__:
        # Its __call__ (sync): the preflight's answer or the view's, then its headers on either.
        return Steps(instance.check_preflight, instance.add_response_headers)
    if (
        isinstance(instance, MiddlewareMixin)
        and cls.__call__ is MiddlewareMixin.__call__
        and not any(
            hasattr(instance, hook)
            for hook in ("process_view", "process_exception", "process_template_response")
        )
    ):
        return Steps(
            getattr(instance, "process_request", None), getattr(instance, "process_response", None)
        )
    return None


# Names a WSGI server gives a request's own variables (RFC 3875's and its extensions, headers as
# HTTP_*, the server's wsgi.*): never taken for the process environment's (below).
_REQUEST_VARIABLES: tuple[str, ...] = (
    *("HTTP", "CONTENT_", "REMOTE_", "REQUEST_", "SERVER_", "SCRIPT_", "PATH_", "QUERY_"),
    *("AUTH_", "GATEWAY_", "SSL_", "RAW_URI", "wsgi.", "granian."),
)


def process_environment_names() -> frozenset[str]:
    """The process environment's variables that are not a request's.

    granian (CGI's way) merges its whole process environment into every request's environ:
    dozens of variables (hundreds on a container platform), which Django's request.headers then
    walks on every call that reads a header (each decide call: the key, the Origin, CORS), for
    nothing: no code reads a process variable through a request. The edge leaves them out of the
    request's META (a header whose CGI name is also a process variable's, HTTP_PROXY, is kept)."""
    return frozenset(name for name in os.environ if not name.startswith(_REQUEST_VARIABLES))


def _view_response(request, view: Callable, match) -> Any:
    """The view's response, as BaseHandler._get_response gives it (no view middleware here)."""
    response = view(request, *match.args, **match.kwargs)
    if response is None:
        raise ValueError(f"The view {match._func_path} didn't return an HttpResponse object.")
    if hasattr(response, "render") and callable(response.render):
        response = response.render()  # DRF's Response (the refusals' path)
    return response


class DecideEdge:
    """WSGI application answering DECIDE_PATH alone (module docstring)."""

    # request_finished's close_old_connections, called once a call is answered (Django calls it
    # at its start too; at the end alone, a connection past CONN_MAX_AGE is closed after the
    # call that found it so, and CONN_HEALTH_CHECKS still checks it before its next use).
    # Django's test client unhooks it while a test's transaction lives on the connection; the
    # edge's tests do the same here.
    database_hygiene: Callable[[], None] = staticmethod(close_old_connections)

    def __init__(self) -> None:
        # The one route (config/urls.py), resolved once rather than per request.
        self._match = resolve(DECIDE_PATH)
        self._process_names = process_environment_names()
        # Django's chain for decide, made only when the edge cannot run a middleware's steps.
        self.handler: DecideHandler | None = None
        steps = []
        for path in decide_middleware():
            step = edge_steps(import_string(path)(_never_called))
            if step is None:
                logger.warning(
                    "decide edge off: middleware %s has its own __call__; decide calls go through "
                    "Django's handler",
                    path,
                )
                self.handler = DecideHandler()
                break
            steps.append(step)
        self._steps = steps

    @property
    def on(self) -> bool:
        return self.handler is None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.handler is not None:
            return self.handler(environ, start_response)
        set_script_prefix(get_script_name(environ))
        if settings.DEBUG:
            # request_started's: the query log only fills with DEBUG on (module docstring).
            reset_queries()
        if self._process_names:
            # A new dict (the server's and the access log's environ is left whole), of the
            # request's variables only (process_environment_names).
            environ = {name: environ[name] for name in environ.keys() - self._process_names}
        request = WSGIRequest(environ)
        # The dispatcher routed it here for that (`_routed_to_decide`).
        sessionless_decide_known(request)
        response = self._respond(request, self._steps)
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [
            *response.items(),
            *(("Set-Cookie", c.output(header="")) for c in response.cookies.values()),
        ]
        if response.streaming:
            # Never decide's; closed by the server as Django's handler lets it close.
            response._resource_closers.append(request.close)
            response._handler_class = DecideHandler
            start_response(status, headers)
            return response
        body = response.content
        # What the response's close() and request_finished's receivers would do (module
        # docstring), done before the answer is written rather than after.
        for closer in response._resource_closers:
            # As HttpResponseBase.close: a closer's failure is no answer's.
            with contextlib.suppress(Exception):
                closer()
        request.close()
        try:
            self.database_hygiene()
        except Exception:
            # Django would meet it in the server's close(), after the answer was sent: the
            # answer is sent here too, and the failure logged.
            logger.exception("decide edge: closing old database connections failed")
        start_response(status, headers)
        return [body]

    def _respond(self, request, steps: list[Steps]) -> Any:
        """The response Django's middleware chain would give, through the same steps."""
        request.resolver_match = self._match
        response = None
        # How many middleware the response goes back through: all of them, unless a `before`
        # answered (its own `after` runs) or raised (its own does not), as in Django's chain.
        depth = len(steps)
        for index, (before, _) in enumerate(steps):
            if before is None:
                continue
            try:
                response = before(request)
            except Exception as exc:
                response = response_for_exception(request, exc)
                depth = index
                break
            if response is not None:
                depth = index + 1
                break
        if response is None:
            try:
                response = _view_response(request, self._match.func, self._match)
            except Exception as exc:
                response = response_for_exception(request, exc)
        for _, after in reversed(steps[:depth]):
            if after is None:
                continue
            try:
                response = after(request, response)
            except Exception as exc:
                response = response_for_exception(request, exc)
        return response


def _never_called(request):  # the edge calls the middleware's steps, never their __call__
    raise AssertionError("the decide edge never calls a middleware's get_response")


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
    answered by a DecideEdge instead."""
    decide_handler = DecideEdge()

    def dispatch(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if _routed_to_decide(environ):
            return decide_handler(environ, start_response)
        return application(environ, start_response)

    dispatch.decide_handler = decide_handler  # type: ignore[attr-defined]
    return dispatch
