"""The decide endpoint: GET with query parameters or POST with a JSON body."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping

import orjson
from django.conf import settings
from django.http import HttpResponse, QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from access.authentication import api_key_authenticate
from access.permissions import api_key_policy_check, request_is_secret_or_staff
from core import metrics
from core.parsers import json_loads
from core.validators import has_control_characters
from experiments.services import ExposureRecord, exposures_log, sticky_arms
from personalization.context import DEVICES, UTM_PARAMETERS, build_request_context
from personalization.decide import HOLDOUT_ARM, Decision, Visitor, decide
from personalization.middleware import sessionless_decide
from personalization.snapshot import holder
from personalization.visitors import visitor_load
from profiles.consent import purpose_allowed

from .serializers import (
    CONTEXT_TEXT_MAX_LENGTHS,
    MAX_PLACEMENTS,
    PLACEMENT_KEY,
    PLACEMENT_KEY_MAX_LENGTH,
    VISITOR_MAX_LENGTH,
    DecideRequestSerializer,
    DecideResponseSerializer,
)


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


_PLACEMENT_KEY = re.compile(PLACEMENT_KEY)
_DEVICES = ("", *DEVICES)  # the serializer's choices, blank allowed
_SURROGATES = re.compile("[\ud800-\udfff]")


def _simple_text(value: object, max_length: int) -> bool:
    return (
        type(value) is str
        and len(value) <= max_length
        and value == value.strip()
        and "\x00" not in value
        and (value.isascii() or _SURROGATES.search(value) is None)
    )


def _fast_validated(body: object) -> dict | None:
    """The validated form of a plainly valid body (GET query or POST JSON) without building the
    DRF serializer (a measurable share of a decide); None whenever anything is unusual, and the
    serializer then gives its usual answer, errors included. Accepts a strict subset of what the
    serializer accepts, and gives the same validated data for it."""
    if type(body) is not dict or not body.keys() <= {"placements", "visitor", "context"}:
        return None
    placements = body.get("placements")
    if type(placements) is not list or not placements or len(placements) > MAX_PLACEMENTS:
        return None
    if not all(
        type(p) is str and len(p) <= PLACEMENT_KEY_MAX_LENGTH and _PLACEMENT_KEY.fullmatch(p)
        for p in placements
    ):
        return None
    data: dict = {"placements": placements, "explain": False}
    if "visitor" in body:
        if not _simple_text(body["visitor"], VISITOR_MAX_LENGTH) or has_control_characters(
            body["visitor"]
        ):
            return None
        data["visitor"] = body["visitor"]
    if "context" in body:
        context = body["context"]
        if type(context) is not dict:
            return None
        validated: dict = {}
        for name, value in context.items():
            if name == "device":
                if type(value) is not str or value not in _DEVICES:
                    return None
            elif name not in CONTEXT_TEXT_MAX_LENGTHS or not _simple_text(
                value, CONTEXT_TEXT_MAX_LENGTHS[name]
            ):
                return None
            validated[name] = value
        data["context"] = validated
    return data


@functools.lru_cache(maxsize=8)
def _ascii_compatible(charset: str) -> bool:
    """Whether ASCII bytes decode to the same characters in `charset` (not UTF-16, say)."""
    ascii_bytes = bytes(range(128))
    try:
        return ascii_bytes.decode(charset) == ascii_bytes.decode("ascii")
    except (LookupError, UnicodeDecodeError):
        return False


def _query_params(request) -> Mapping[str, str] | QueryDict:
    """What `request.GET[name]` (the last value) and `name in request.GET` give, as a dict read
    straight from the query string when that is plain: ASCII without "%" or "+" (so that
    parse_qsl's unquoting and QueryDict's decoding change nothing), within
    DATA_UPLOAD_MAX_NUMBER_FIELDS. Then, as parse_qsl(keep_blank_values=True) does: fields split
    on "&", empty ones skipped, the name up to the first "=", the value after it ("" without one).
    Anything else is request.GET itself (its parsing, its TooManyFieldsSent)."""
    query = request.META.get("QUERY_STRING", "")
    if (
        query.isascii()
        and "%" not in query
        and "+" not in query
        and request.encoding is None
        and _ascii_compatible(settings.DEFAULT_CHARSET)
    ):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        if limit is None or (1 + query.count("&") if query else 0) <= limit:
            params: dict[str, str] = {}
            for field in query.split("&"):
                if field:
                    name, _, value = field.partition("=")
                    params[name] = value
            return params
    return request.GET


def _query_to_body(params) -> dict:
    body: dict = {}
    if "placements" in params:
        body["placements"] = [p.strip() for p in params["placements"].split(",") if p.strip()]
    if "visitor" in params:
        body["visitor"] = params["visitor"]
    if "explain" in params:
        body["explain"] = params["explain"]
    if "force_arm" in params:
        body["force_arm"] = params["force_arm"]
    context = {
        name: params[name] for name in ("url", "referrer", "locale", "device") if name in params
    }
    utm = {k: params[name] for k, name in UTM_PARAMETERS if name in params}
    if utm:
        context["utm"] = utm
    if context:
        body["context"] = context
    return body


def _json_body(request) -> object | None:
    """The POST body as DRF's JSONParser would read it, or None when it might not agree (another
    media type or charset, malformed JSON...): DRF then parses it and gives its usual answer."""
    if request.content_type != "application/json":
        return None
    charset = request.content_params.get("charset")
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return None
    try:
        # The parser DRF uses here (core.parsers): same acceptance, same data.
        return json_loads(request.body)
    except (ValueError, RecursionError):  # JSONDecodeError, invalid UTF-8 included
        return None


_json_encode = JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
# orjson writes exactly the DRF encoder's bytes for these exact types (compact; strings as UTF-8
# with the same escapes, every code point checked; ints within 64 bits, else it raises). Not for
# floats (1e-05 is "0.00001" or "1e-5" there, NaN "null"), so those never reach it.
_PLAIN_JSON_TYPES = frozenset((str, int, bool, type(None)))
# Anything but dicts, lists and the plain types (str subclasses, dataclasses, datetimes...)
# makes orjson raise instead of encoding it its own way.
_ORJSON_STRICT = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def _plain_json(value: object) -> bool:
    """Whether `value` is JSON made only of dicts (str keys), lists and _PLAIN_JSON_TYPES."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (
                type(item) not in _PLAIN_JSON_TYPES and not _plain_json(item)
            ):
                return False
        return True
    if kind is list:
        for item in value:
            if type(item) not in _PLAIN_JSON_TYPES and not _plain_json(item):
                return False
        return True
    return kind in _PLAIN_JSON_TYPES


def _json_bytes(payload: dict) -> bytes:
    """DRF's JSONRenderer bytes for a decide answer: compact UTF-8, U+2028/U+2029 escaped.

    orjson when the variants' `data` (the only free-form JSON in the answer, which may hold
    floats) is plain; the DRF encoder otherwise, or when orjson refuses something (a lone
    surrogate, an int beyond 64 bits...), which then fails or encodes as it always did."""
    for decision in payload["placements"].values():
        if not _plain_json(decision["data"]):
            break
    else:
        try:
            raw = orjson.dumps(payload, option=_ORJSON_STRICT)
        except orjson.JSONEncodeError:
            pass
        else:
            # UTF-8 of U+2028/U+2029; in valid UTF-8 these bytes can only be those characters.
            return raw.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    text = _json_encode(payload).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode()


def _json_response(payload: dict, allow: str) -> HttpResponse:
    """The bytes DRF's JSONRenderer produces for `payload` (see _json_bytes) and the headers its
    APIView adds (Allow), without the Response machinery. Also `Vary: Cookie`, which the session
    middleware adds on the DRF path (its SessionAuthentication reads the session): the answer may
    depend on a staff session (explain). The headers in the order, and with the values, that
    content_type=, response["Allow"] and patch_vary_headers(response, ("Cookie",)) give a new
    response, set in one go."""
    return HttpResponse(
        _json_bytes(payload),
        headers={"Content-Type": "application/json", "Allow": allow, "Vary": "Cookie"},
    )


class DecideView(APIView):
    """Chooses, renders and explains the content of each requested placement for a visitor.

    Hot path: a plainly valid GET or POST without session cookie and without explain flag,
    keyless or with a key that passes its checks, is answered straight from `dispatch` without
    DRF's request wrapping, content negotiation, serializer and renderer: for such a request they
    have a fixed outcome (JSON in and out, data as validated here). The key's checks are DRF's
    own, called directly: access.authentication.api_key_authenticate (key, origin rule, rate
    limit; its outcome is remembered on the request, so a call that then goes through DRF is
    counted once) and access.permissions.api_key_policy_check. Everything else - a key or policy
    refusal (DRF answers it, from the remembered outcome), staff sessions (CSRF, explain), bad or
    unusual input (the serializer's 400s), other methods - goes through DRF unchanged.
    """

    fast_path = True  # tests turn it off to compare both paths

    def dispatch(self, request, *args, **kwargs):
        start = time.perf_counter()
        response = self._fast_answer(request) if self.fast_path else None
        if response is None:
            response = super().dispatch(request, *args, **kwargs)
        metrics.DECIDE_SECONDS.observe(time.perf_counter() - start)
        return response

    def _fast_answer(self, request) -> HttpResponse | None:
        # Already asked (and remembered on the request) by the session middleware.
        if not sessionless_decide(request):
            return None
        try:
            api_key = api_key_authenticate(request)
            api_key_policy_check(request, self, api_key, is_staff=False)
        except APIException:
            return None  # DRF answers the refusal (the same outcome, counted once)
        method = request.method
        if method == "GET":
            data = _fast_validated(_query_to_body(_query_params(request)))
        elif method == "POST":
            data = _fast_validated(_json_body(request))
        else:
            return None
        if data is None:
            return None
        return _json_response(self._decide(request, data), ", ".join(self.allowed_methods))

    @extend_schema(
        parameters=[
            OpenApiParameter("placements", OpenApiTypes.STR, description="Comma-separated keys."),
            OpenApiParameter("visitor", OpenApiTypes.STR, required=False),
            OpenApiParameter("url", OpenApiTypes.STR, required=False),
            OpenApiParameter("locale", OpenApiTypes.STR, required=False),
            OpenApiParameter("device", OpenApiTypes.STR, required=False),
            OpenApiParameter(
                "force_arm",
                OpenApiTypes.STR,
                required=False,
                description="experiment:arm to preview (secret key or staff; not counted).",
            ),
        ],
        responses=DecideResponseSerializer,
    )
    def get(self, request):
        return self._answer(request, _query_to_body(request.query_params))

    @extend_schema(request=DecideRequestSerializer, responses=DecideResponseSerializer)
    def post(self, request):
        return self._answer(request, request.data)

    def _answer(self, request, body) -> Response:
        """The DRF path (keyed calls, staff sessions, anything unusual): validated data from the
        fast validator when it recognises the body, else from the serializer (and its 400s)."""
        data = _fast_validated(body)
        if data is None:
            serializer = DecideRequestSerializer(data=body)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        return Response(self._decide(request, data))

    def _decide(self, request, data) -> dict:
        """The answer for validated request data (`request`: Django's or DRF's)."""
        ctx = data.get("context", {})
        request_context = build_request_context(
            url=ctx.get("url", ""),
            referrer=ctx.get("referrer", ""),
            # META, not request.headers: the same values, without a KeyError per absent header.
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            accept_language=request.META.get("HTTP_ACCEPT_LANGUAGE", ""),
            locale=ctx.get("locale", ""),
            device=ctx.get("device", ""),
            utm=ctx.get("utm"),
            attributes=ctx.get("attributes"),
        )
        visitor, profile_status = visitor_load(visitor_id=data.get("visitor"))
        # Explanations reveal targeting rules: secret server keys and staff only (the fast path
        # never has explain set, so a plain Django request never gets here with it).
        explain = data["explain"] and request_is_secret_or_staff(request)
        snapshot = holder.get()
        placement_keys = list(dict.fromkeys(data["placements"]))
        # Preview of an arm (?force_arm=experiment:arm): secret keys and staff only, never
        # counted; the fast path never has it set.
        forced = None
        if data.get("force_arm") and request_is_secret_or_staff(request):
            experiment_key, _, arm_key = data["force_arm"].partition(":")
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
