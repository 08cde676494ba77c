"""Django's session, user and message middleware, stepped over on keyless decide calls.

A browser page asks decide for its placements on every page view, without a session cookie and,
while keys are optional, without a key. For such a call these three middleware have nothing to
do: no session to load or save, no user to authenticate, no message to show. DRF's session
authentication then finds no user and the caller is anonymous, as it would be with them. The
admin and staff sessions, keyed calls and every other path go through all three.

Running them cost 30-50 µs of a 300-370 µs decide request through Django's handler in process
(interleaved runs on a busy machine; docs/benchmarks.md).

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


def keyless_anonymous(request) -> bool:
    """Whether `request` carries no session cookie, API key or Authorization header while keys
    are optional: its caller is anonymous whatever the authentication (the decide fast path's
    condition too)."""
    meta = request.META
    return not (
        "HTTP_AUTHORIZATION" in meta
        or "HTTP_X_MOSAIC_KEY" in meta
        or settings.SESSION_COOKIE_NAME in request.COOKIES
        or settings.MOSAIC_REQUIRE_API_KEY
    )


def keyless_decide(request) -> bool:
    """A keyless, anonymous decide call (remembered on the request: the middleware and the decide
    view ask)."""
    try:
        return request._mosaic_keyless_decide
    except AttributeError:
        keyless = request.path_info == DECIDE_PATH and keyless_anonymous(request)
        request._mosaic_keyless_decide = keyless
        return keyless


class _SkippedOnKeylessDecide:
    def __call__(self, request):
        if keyless_decide(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_Sessions):
    def __call__(self, request):
        if keyless_decide(request):
            response = self.get_response(request)
            patch_vary_headers(response, ("Cookie",))
            return response
        return super().__call__(request)


class AuthenticationMiddleware(_SkippedOnKeylessDecide, _Authentication):
    pass


class MessageMiddleware(_SkippedOnKeylessDecide, _Messages):
    pass
