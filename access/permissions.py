"""DRF permissions around API keys.

ApiKeyPolicy is the project-wide default (REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"]):
- no key: allowed while settings.MOSAIC_REQUIRE_API_KEY is false (the embedded demo), or for staff
  signed in to the admin; otherwise 401;
- secret key: allowed everywhere;
- publishable key: only the browser endpoints (events, consent, decide, identify) — a view opts in
  or out explicitly with `publishable_key_allowed = True/False`, otherwise its path decides.
IsSecretKeyOrStaff is for endpoints that no browser may call (export, erase, explain, admin APIs).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from .models import ApiKey

PUBLISHABLE_PATHS = re.compile(r"^/api/v1/(events|consent|decide|identify)/?$")


def request_api_key(request) -> ApiKey | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


def request_is_staff(request) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and getattr(user, "is_staff", False))


def request_is_secret_or_staff(request) -> bool:
    api_key = request_api_key(request)
    return (api_key is not None and api_key.is_secret) or request_is_staff(request)


def publishable_allowed_for(request, view) -> bool:
    explicit = getattr(view, "publishable_key_allowed", None)
    if explicit is not None:
        return bool(explicit)
    return bool(PUBLISHABLE_PATHS.match(request.path))


def api_key_policy_check(request, view, api_key: ApiKey | None, *, is_staff: bool) -> None:
    """The project-wide key policy (module docstring) for a caller with `api_key` (None: none)
    who is staff or not; raises NotAuthenticated/PermissionDenied. ApiKeyPolicy and the decide
    view's lean path both call it."""
    if api_key is None:
        if is_staff or not settings.MOSAIC_REQUIRE_API_KEY:
            return
        raise exceptions.NotAuthenticated(
            {"api_key": [_("An API key is required (Authorization: Bearer <key>).")]}
        )
    if api_key.is_secret or publishable_allowed_for(request, view):
        return
    raise exceptions.PermissionDenied(
        {"api_key": [_("A publishable key cannot call this endpoint; use a secret key.")]}
    )


class ApiKeyPolicy(BasePermission):
    def has_permission(self, request, view) -> bool:
        api_key_policy_check(
            request, view, request_api_key(request), is_staff=request_is_staff(request)
        )
        return True


class IsSecretKeyOrStaff(BasePermission):
    message = _("Requires a secret API key or a staff session.")

    def has_permission(self, request, view) -> bool:
        if request_is_secret_or_staff(request):
            return True
        raise exceptions.PermissionDenied({"api_key": [self.message]})


# HTTP method -> the Django model permission it needs (the admin's view/add/change/delete).
ACTION_OF_METHOD = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def request_has_perm(request, perm: str) -> bool:
    """Whether the caller's role holds `perm` ("content.change_variant"): a staff user's own and
    groups' permissions (as the admin checks them); a secret key's role group; a secret key with
    no role (issued before roles existed) holds every permission, like the admin account."""
    api_key = request_api_key(request)
    if api_key is not None:
        if not api_key.is_secret:
            return False
        if api_key.role_id is None:
            return True
        app_label, codename = perm.split(".", 1)
        return api_key.role.permissions.filter(
            content_type__app_label=app_label, codename=codename
        ).exists()
    user = getattr(request, "user", None)
    return bool(
        user is not None
        and getattr(user, "is_staff", False)
        and user.is_active
        and user.has_perm(perm)
    )


class ModelPermissionByRole(BasePermission):
    """Management API: a secret key or a staff session, whose role holds the model permission of
    the action (view for reads, add/change/delete for writes; a view may name its own with
    `permission_action`). The model is the view's `permission_model`."""

    def has_permission(self, request, view) -> bool:
        if not request_is_secret_or_staff(request):
            raise exceptions.PermissionDenied(
                {"api_key": [_("Requires a secret API key or a staff session.")]}
            )
        model = view.permission_model
        action = getattr(view, "permission_action", None) or ACTION_OF_METHOD.get(
            request.method, "change"
        )
        perm = f"{model._meta.app_label}.{action}_{model._meta.model_name}"
        if request_has_perm(request, perm):
            return True
        raise exceptions.PermissionDenied(
            {"permission": [f"Your role does not allow this ({perm} is needed)."]}
        )
