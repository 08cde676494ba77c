"""HTTP endpoints of identity: POST /api/v1/identify and POST /api/v1/traits."""

from __future__ import annotations

import hashlib
import hmac
import logging

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import request_is_secret_or_staff
from core.errors import Forbidden
from core.logging import log_event

from . import selectors, services
from .serializers import IdentifySerializer, TraitsSerializer
from .traits import traits_coerce

logger = logging.getLogger(__name__)


def user_token_for(user_id: str, visitor: str) -> str:
    """What the site's server computes and hands to its page when a user signs in: hex
    HMAC-SHA256 of the user id AND the visitor id of that browser (its `mosaic_vid` cookie).

    Bound to both, a token lets its holder link only the visitor it was issued for: a user's
    token for their own browser cannot link (and so take over) another visitor id. The two are
    joined with a NUL, which neither may contain (refused by the serializer)."""
    secret = settings.MOSAIC_IDENTIFY_SECRET.encode()
    message = b"mosaic-identify-v2\x00" + user_id.encode() + b"\x00" + visitor.encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class IdentifyView(APIView):
    """Links an anonymous visitor to a known user; merges that user's profiles into the oldest."""

    publishable_key_allowed = True

    @extend_schema(request=IdentifySerializer, responses={200: dict, 400: dict, 403: dict})
    def post(self, request):
        serializer = IdentifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # A browser could claim any user id; only the site's server can sign one. Server-side
        # callers (secret key, staff) are trusted without a token.
        if not request_is_secret_or_staff(request):
            token = data.get("user_token")
            if not settings.MOSAIC_IDENTIFY_SECRET:
                raise Forbidden(
                    "Browser identify is off: MOSAIC_IDENTIFY_SECRET is unset.", field="user_token"
                )
            if not token:
                raise Forbidden("Required when called from a browser.", field="user_token")
            expected = user_token_for(data["user_id"], data["visitor"])
            if not hmac.compare_digest(token.lower(), expected):
                raise Forbidden("Does not match this user_id and visitor.", field="user_token")
        if not selectors.visitor_storage_allowed(visitor=data["visitor"]):
            # Consent gates storage: under opt-in, no profile, link or merge for a visitor who
            # granted nothing.
            return Response({"identified": False, "merged": 0, "reason": "no_consent"})
        # IdentifyConflict (409) when the visitor is already another user's
        result = services.visitor_identify(visitor=data["visitor"], user_id=data["user_id"])
        log_event(logger, "visitor.identified", merged=result.merged)
        return Response({"identified": True, "merged": result.merged})


class TraitsView(APIView):
    """Sets traits on a visitor's profile, coerced to their declared types."""

    # Traits drive targeting: a browser must not be able to grant itself "plan=pro".
    publishable_key_allowed = False

    @extend_schema(request=TraitsSerializer, responses={200: dict, 400: dict})
    def post(self, request):
        serializer = TraitsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        coerced, errors = traits_coerce(data["traits"])
        if errors:
            raise drf_serializers.ValidationError({"traits": {k: [v] for k, v in errors.items()}})
        if not selectors.visitor_storage_allowed(visitor=data["visitor"]):
            return Response({"traits": {}, "stored": False, "reason": "no_consent"})
        profile = services.visitor_set_traits(visitor=data["visitor"], traits=coerced)
        return Response({"traits": {name: profile.traits.get(name) for name in coerced}})
