"""Django's session, user and message middleware, stepped over on decide calls without a session.

A browser page asks decide for its placements on every page view, without a session cookie
(with a publishable key in production). For such a call these three middleware have nothing to
do: no session to load or save, no user to authenticate, no message to show. DRF's session
authentication then finds no user, and the caller is its API key or anonymous, as it would be
with them (keys are checked by access.authentication, not by these). The admin, staff sessions
and every other path go through all three.

Running them cost a measurable share of a decide request through Django's handler in process
(interleaved runs; docs/benchmarks.md, "History").

Each class is Django's own and stays a subclass of it (the admin's system checks look for
them); for a keyless decide call its request and response steps are skipped. What the session
middleware would have added to such an answer all the same, `Vary: Cookie`, is still added:
decide's answer may depend on a staff session. CSRF's middleware stays Django's class
(`check --deploy` looks for it by name); decide, like every DRF view, is exempt from it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Messages
from django.contrib.sessions.middleware import SessionMiddleware as _Sessions
from django.utils.cache import patch_vary_headers

DECIDE_PATH = "/api/v1/decide"  # config/urls.py routes it (first)


def sessionless_decide(request) -> bool:
    """A decide call without a session cookie: no staff session can be behind it (remembered on
    the request: the middleware and the decide view ask)."""
    try:
        return request._mosaic_sessionless_decide
    except AttributeError:
        sessionless = (
            request.path_info == DECIDE_PATH and settings.SESSION_COOKIE_NAME not in request.COOKIES
        )
        request._mosaic_sessionless_decide = sessionless
        return sessionless


def sessionless_decide_known(request) -> None:
    """Remember on `request` that it is a decide call without a session cookie, for a caller that
    has checked exactly that already (the decide edge: its dispatcher routes only such calls)."""
    request._mosaic_sessionless_decide = True


class _SkippedOnSessionlessDecide:
    def __call__(self, request):
        if sessionless_decide(request):
            return self.get_response(request)
        return super().__call__(request)


def _vary_cookie(request, response):
    patch_vary_headers(response, ("Cookie",))
    return response


class SessionMiddleware(_Sessions):
    def __call__(self, request):
        if sessionless_decide(request):
            return _vary_cookie(request, self.get_response(request))
        return super().__call__(request)

    def decide_edge_steps(self):
        """Its steps for the decide edge (personalization/api/handler.py), which serves only
        decide calls without a session cookie: no step in, `Vary: Cookie` on the answer, as
        above."""
        return None, _vary_cookie


class AuthenticationMiddleware(_SkippedOnSessionlessDecide, _Authentication):
    pass


class MessageMiddleware(_SkippedOnSessionlessDecide, _Messages):
    pass
