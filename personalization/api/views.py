"""The decide endpoint: GET with query parameters or POST with a JSON body."""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

import pydantic
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authentication import api_key_authenticate
from access.permissions import api_key_policy_check, request_is_secret_or_staff
from core import metrics
from core.conditional import KEYED_CALL_ERRORS, ErrorSerializer, in_status_order
from core.parsers import json_loads
from core.renderers import ORJSONRenderer, json_bytes
from experiments.services import ExposureRecord, exposures_log, sticky_arms
from personalization.context import build_request_context
from personalization.decide import HOLDOUT_ARM, Decision, Visitor, decide
from personalization.middleware import sessionless_decide
from personalization.snapshot import holder
from personalization.visitors import visitor_load
from profiles.consent import purpose_allowed

from .schemas import DecideContext, DecideRequest, DecideResponse, query_body, query_parameters

_NO_CONTEXT = DecideContext.model_validate({})


def _log_exposures(visitor: Visitor, profile_status: str, decisions: dict[str, Decision]) -> None:
    """Buffer the experiment arms served (analytics consent permitting); never raises."""
    # Forced arms (previews) are never counted.
    served = [
        d.experiment
        for d in decisions.values()
        if d.experiment is not None and not d.experiment.get("forced")
    ]
    held_out = [d.holdout for d in decisions.values() if d.holdout is not None]
    if (not served and not held_out) or not visitor.key:
        return
    consent = (visitor.profile or {}).get("consent")
    if not purpose_allowed(consent, "analytics"):
        return
    exposures_log(
        records=[
            *(
                ExposureRecord(e["key"], e["arm"], visitor.key, bool(e.get("sticky")))
                for e in served
            ),
            *(ExposureRecord(key, HOLDOUT_ARM, visitor.key) for key in held_out),
        ],
        redis_available=profile_status != "unavailable",
    )


def _json_body(request) -> object | None:
    """A POST's JSON body, parsed by the API's one parser (core.parsers, as DRF's parser would),
    or None when DRF must answer it itself: another media type or charset (its 415), malformed
    JSON (its 400 naming the field)."""
    if request.content_type != "application/json":
        return None
    charset = request.content_params.get("charset")
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return None
    try:
        return json_loads(request.body)
    except (ValueError, RecursionError):  # JSONDecodeError, invalid UTF-8 included
        return None


def _query_params(request) -> Mapping[str, str]:
    """The query's last value per name, as `request.GET` gives them: parsed by the same
    urllib.parse.parse_qsl call Django's QueryDict makes when the query is ASCII (a browser's
    always is: it percent-encodes the rest), whose decoding then changes nothing (Django's
    DEFAULT_CHARSET, else Latin-1); `request.GET` itself otherwise, and for a
    query over DATA_UPLOAD_MAX_NUMBER_FIELDS (its refusal, a 400). A QueryDict cost several
    times the parse itself on every decide call (docs/benchmarks.md, "The decide edge")."""
    query = request.META.get("QUERY_STRING", "")
    if query.isascii():
        try:
            return dict(
                parse_qsl(
                    query,
                    keep_blank_values=True,
                    encoding=settings.DEFAULT_CHARSET,
                    max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
                )
            )
        except ValueError:
            pass  # more fields than allowed: Django's QueryDict refuses them
    return request.GET


_DECIDE_ERRORS = in_status_order(
    {
        400: OpenApiResponse(
            ErrorSerializer, description="Invalid input, by field (`placements[0]`)."
        ),
        **KEYED_CALL_ERRORS,
        403: OpenApiResponse(
            ErrorSerializer,
            description="The key is not allowed from this Origin (field `origin`).",
        ),
        415: OpenApiResponse(ErrorSerializer, description="POST body not JSON."),
    }
)


class DecideView(APIView):
    """Chooses, renders and explains the content of each requested placement for a visitor.

    Every call validates through the one schema (schemas.DecideRequest) and is rendered by the
    API's renderer (core.renderers, orjson). Hot path: a GET, or a POST with a JSON body, without
    session cookie, keyless or with a key that passes its checks, and valid, is answered straight
    from `dispatch`, without DRF's request wrapping and content negotiation (for such a call their
    outcome is fixed: JSON in and out). The key's checks are DRF's own, called directly:
    access.authentication.api_key_authenticate (key, origin rule, rate limit; its outcome is
    remembered on the request, so a call that then goes through DRF is counted once) and
    access.permissions.api_key_policy_check. Everything else goes through DRF: a key or policy
    refusal, an invalid body (the same schema refuses it there, and core.errors' handler answers
    it), staff sessions (CSRF, explain), other media types and methods.

    In the web process, calls without a session or CSRF cookie reach this view through
    personalization.api.handler (config/wsgi.py): Django's handler with only the middleware such
    a call needs, and no URL resolution.
    """

    renderer_classes = [ORJSONRenderer]

    def dispatch(self, request, *args, **kwargs):
        start = time.perf_counter()
        response = self._lean_answer(request)
        if response is None:
            response = super().dispatch(request, *args, **kwargs)
        metrics.DECIDE_SECONDS.observe(time.perf_counter() - start)
        return response

    def _lean_answer(self, request) -> HttpResponse | None:
        # Already asked (and remembered on the request) by the session middleware.
        if not sessionless_decide(request):
            return None
        method = request.method
        body: object
        if method == "GET":
            body = query_body(_query_params(request))
        elif method == "POST":
            body = _json_body(request)
            if body is None:
                return None
        else:
            return None
        try:
            api_key = api_key_authenticate(request)
            api_key_policy_check(request, self, api_key, is_staff=False)
        except (APIException, DatabaseError):
            # DRF answers the refusal (the same outcome, counted once), or the database's
            # failure to look the key up (core.errors: 503 naming the database, not a 500)
            return None
        try:
            data = DecideRequest.model_validate(body)
        except pydantic.ValidationError:
            return None  # DRF validates again with the same schema and answers the errors
        # No session: only a secret key may ask for explanations or a forced arm.
        privileged = api_key is not None and api_key.is_secret
        return HttpResponse(
            json_bytes(self._decide(request, data, privileged=privileged)),
            headers={"Content-Type": ORJSONRenderer.media_type, "Allow": self._allow()},
        )

    _allow_header: str | None = None

    @classmethod
    def _allow(cls) -> str:
        """The Allow header DRF gives (its allowed_methods), worked out once per class."""
        allow = cls.__dict__.get("_allow_header")
        if allow is None:
            view = cls()
            view.setup(HttpRequest())  # as as_view() sets each one up (it adds HEAD for GET)
            allow = cls._allow_header = ", ".join(view.allowed_methods)
        return allow

    @extend_schema(parameters=query_parameters(), responses={200: DecideResponse, **_DECIDE_ERRORS})
    def get(self, request):
        return self._answer(request, query_body(request.query_params))

    @extend_schema(request=DecideRequest, responses={200: DecideResponse, **_DECIDE_ERRORS})
    def post(self, request):
        return self._answer(request, request.data)

    def _answer(self, request, body) -> Response:
        """The DRF path: the schema's refusal (pydantic.ValidationError) is answered by
        core.errors' handler in the one error shape."""
        data = DecideRequest.model_validate(body)
        privileged = request_is_secret_or_staff(request)
        return Response(self._decide(request, data, privileged=privileged))

    def _decide(self, request, data: DecideRequest, *, privileged: bool) -> dict:
        """The answer for a validated request (`request`: Django's or DRF's); `privileged`: the
        caller is a secret key or staff."""
        ctx = data.context or _NO_CONTEXT
        request_context = build_request_context(
            url=ctx.url,
            referrer=ctx.referrer,
            # META, not request.headers: the same values, without a KeyError per absent header.
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            accept_language=request.META.get("HTTP_ACCEPT_LANGUAGE", ""),
            locale=ctx.locale,
            device=ctx.device,
            utm=ctx.utm or None,
            attributes=ctx.attributes or None,
        )
        visitor, profile_status = visitor_load(visitor_id=data.visitor)
        # Explanations reveal targeting rules: secret server keys and staff only.
        explain = data.explain and privileged
        snapshot = holder.get()
        placement_keys = list(dict.fromkeys(data.placements))
        # Preview of an arm (?force_arm=experiment:arm): secret keys and staff only, never
        # counted.
        forced = None
        if data.force_arm and privileged:
            experiment_key, _, arm_key = data.force_arm.partition(":")
            forced = {experiment_key: arm_key}
        # Sticky experiments cost one more Redis read, only when one is on a requested placement.
        sticky = None
        if snapshot.any_sticky and visitor.key and visitor.analytics_allowed:
            plans = (snapshot.placements.get(k) for k in placement_keys)
            wanted = [p.experiment.key for p in plans if p and p.experiment and p.experiment.sticky]
            if wanted:
                # Served from this process's memory for repeat visitors (no round trip).
                sticky = sticky_arms(profile_key=visitor.key, experiments=wanted)
        decisions = decide(
            snapshot=snapshot,
            placement_keys=placement_keys,
            visitor=visitor,
            request_context=request_context,
            explain=explain,
            forced=forced,
            sticky=sticky,
        )
        # A second Redis round trip, after the answer is computed (the arm is only known now).
        _log_exposures(visitor, profile_status, decisions)
        return {
            "profile": profile_status,
            "personalization": visitor.personalization_allowed and visitor.profile is not None,
            "snapshot": snapshot.version,
            "placements": {key: d.as_dict() for key, d in decisions.items()},
        }
