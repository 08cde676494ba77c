"""DRF authentication by API key: `Authorization: Bearer <key>` or `X-Mosaic-Key: <key>`.

On success request.user is an ApiKeyPrincipal and request.auth the ApiKey. The key's origin
rule and rate limit are enforced here, so they hold for every endpoint that accepts keys.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from . import selectors, services
from .keys import origin_normalize
from .models import ApiKey


class ApiKeyPrincipal:
    """The caller behind a key: authenticated, never staff (staff use their admin session)."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api key {self.api_key.prefix}"

    def get_username(self) -> str:
        # The part of Django's user protocol that audit trails read ("who did it").
        return f"api-key:{self.api_key.prefix}"


def raw_key_from_request(request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-Mosaic-Key", "").strip() or None


def api_key_authenticate(request) -> ApiKey | None:
    """The active key `request` (Django's) carries, its origin rule and rate limit enforced; None
    without a key. Raises DRF's AuthenticationFailed (unknown or revoked key), PermissionDenied
    (origin) or Throttled (rate limit). The one implementation of these checks: DRF's
    authentication below and the decide view's lean path both call it, and its outcome is
    remembered on the request, so a request that takes both counts once against the limit and
    gets the same answer."""
    try:
        outcome = request._mosaic_api_key
    except AttributeError:
        try:
            outcome = _api_key_checked(request)
        except exceptions.APIException as exc:
            outcome = exc
        request._mosaic_api_key = outcome
    if isinstance(outcome, exceptions.APIException):
        raise outcome
    return outcome


def _api_key_checked(request) -> ApiKey | None:
    raw = raw_key_from_request(request)
    if raw is None:
        return None
    api_key = selectors.api_key_get_active(raw=raw)
    if api_key is None:
        raise exceptions.AuthenticationFailed({"api_key": [_("Unknown or revoked API key.")]})
    origin = request.headers.get("Origin")
    if api_key.is_publishable and origin is not None:
        allowed = {origin_normalize(o) for o in api_key.allowed_origins or []}
        if origin_normalize(origin) not in allowed:
            raise exceptions.PermissionDenied(
                {"origin": [_("This key is not allowed from this origin.")]}
            )
    decision = services.rate_limit_hit(
        api_key=api_key,
        client=services.client_address(request) if api_key.is_publishable else None,
        origin_allowed=origin is not None,
    )
    if not decision.allowed:
        throttled = exceptions.Throttled(wait=decision.retry_after)
        throttled.detail = {
            "api_key": [
                exceptions.ErrorDetail(
                    f"Rate limit of {decision.limit} requests per minute exceeded; "
                    f"retry in {decision.retry_after} s.",
                    code="throttled",
                )
            ]
        }
        raise throttled
    services.api_key_touch(api_key=api_key)
    return api_key


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        # request._request: Django's request under DRF's (where the outcome is remembered).
        api_key = api_key_authenticate(getattr(request, "_request", request))
        if api_key is None:
            return None
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) for a bad key, as HTTP wants.
        return 'Bearer realm="mosaic"'
