"""The decide endpoint's one request schema and its answer's schema (also the OpenAPI document).

Every decide call validates through `DecideRequest`: a POST's JSON body as it is, a GET's query
as `query_body` maps it (the same fields). Its refusals are answered by core.errors' handler in
the one error shape, naming the field; drf-spectacular documents both classes (the POST body,
the 200 answer) and the GET parameters derived from the same fields (`query_parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from core.schema import NoNull, StrictSchema, Trim, at_most
from core.validators import has_control_characters
from personalization.context import UTM_PARAMETERS

PLACEMENT_KEY = r"^[-a-zA-Z0-9_]+$"
MAX_PLACEMENTS = 20
MAX_UTM = 20  # utm_* values of a context (five are standard)
MAX_ATTRIBUTES = 100  # request.attributes.* of a decide


def _no_control_characters(value: str) -> str:
    # A control character in a visitor id cannot travel in a URL path (export, erase), a log
    # line or a header unharmed: refused at every entry point (core.validators).
    if has_control_characters(value):
        raise PydanticCustomError("control_characters", "Must not contain control characters.")
    return value


def _optional(description: str = "") -> Any:
    """A field that may be absent (then None) but not null: a default its type does not allow
    (pydantic does not validate defaults), left out of the OpenAPI document."""

    def drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(None, description=description or None, json_schema_extra=drop_default)


PlacementKey = Annotated[str, Trim(max_length=100, pattern=PLACEMENT_KEY), NoNull]
VisitorId = Annotated[str, Trim(max_length=200), NoNull, AfterValidator(_no_control_characters)]
ForceArm = Annotated[str, Trim(pattern=r"^[-a-zA-Z0-9_]{1,100}:[-a-zA-Z0-9_]{1,100}$"), NoNull]
# personalization.context.DEVICES, or blank (tests/unit/personalization/test_decide_schema.py
# checks that the two agree).
Device = Literal["", "mobile", "tablet", "desktop"]


class DecideContext(StrictSchema):
    """What the page knows about the request (the rest comes from its headers)."""

    url: Annotated[str, Trim(max_length=2000), NoNull] = Field(
        "", description="The page's URL (its utm_* parameters are read)."
    )
    referrer: Annotated[str, Trim(max_length=2000), NoNull] = ""
    locale: Annotated[str, Trim(max_length=35), NoNull] = Field(
        "", description="Else the Accept-Language header's first."
    )
    device: Device = Field("", description="Else guessed from the User-Agent.")
    utm: Annotated[
        dict[str, Annotated[str, Trim(min_length=1, max_length=200), NoNull]],
        at_most(MAX_UTM, "keys"),
    ] = Field(default_factory=dict, description="utm_source and the like, without the prefix.")
    attributes: Annotated[dict[str, Any], at_most(MAX_ATTRIBUTES, "keys")] = Field(
        default_factory=dict, description="Free attributes conditions read as request.attributes."
    )


class DecideRequest(StrictSchema):
    """Which placements to decide, for which visitor, in which context."""

    placements: Annotated[
        list[PlacementKey], at_most(MAX_PLACEMENTS), Field(min_length=1, max_length=MAX_PLACEMENTS)
    ] = Field(description="Placement keys (GET: comma-separated).")
    visitor: VisitorId = _optional("The visitor's id (pseudonymised at once).")
    context: DecideContext = _optional()
    explain: bool = Field(False, description="Rules tried, per placement (secret key or staff).")
    force_arm: ForceArm = _optional("experiment:arm to preview (secret key or staff; not counted).")


# GET parameters -> the body's fields (the context's as top-level parameters, utm_* as utm).
_QUERY_FIELDS = ("visitor", "explain", "force_arm")
_QUERY_CONTEXT_FIELDS = ("url", "referrer", "locale", "device")


def query_body(params: Mapping[str, str]) -> dict[str, Any]:
    """A GET's query parameters (`request.GET`: the last value of each) as a decide body."""
    body: dict[str, Any] = {}
    if "placements" in params:
        body["placements"] = [p.strip() for p in params["placements"].split(",") if p.strip()]
    for name in _QUERY_FIELDS:
        if name in params:
            body[name] = params[name]
    context: dict[str, Any] = {
        name: params[name] for name in _QUERY_CONTEXT_FIELDS if name in params
    }
    utm = {key: params[name] for key, name in UTM_PARAMETERS if name in params}
    if utm:
        context["utm"] = utm
    if context:
        body["context"] = context
    return body


def _parameter(name: str, model: type[BaseModel]) -> OpenApiParameter:
    info = model.model_fields[name]
    kind = OpenApiTypes.BOOL if info.annotation is bool else OpenApiTypes.STR
    return OpenApiParameter(
        name, kind, required=info.is_required(), description=info.description or ""
    )


def query_parameters() -> list[OpenApiParameter]:
    """The GET parameters, from the schema's fields (their descriptions included)."""
    return [
        _parameter("placements", DecideRequest),
        *(_parameter(name, DecideRequest) for name in _QUERY_FIELDS),
        *(_parameter(name, DecideContext) for name in _QUERY_CONTEXT_FIELDS),
        *(
            OpenApiParameter(name, OpenApiTypes.STR, required=False, description=f"utm.{key}")
            for key, name in UTM_PARAMETERS
        ),
    ]


# OpenAPI 3.0 (drf-spectacular's) spells "or null" as `nullable`, not JSON Schema's type null.
NullableText = Annotated[str | None, WithJsonSchema({"type": "string", "nullable": True})]
NullableObject = Annotated[
    dict[str, Any] | None, WithJsonSchema({"type": "object", "nullable": True})
]


class Decision(BaseModel):
    variant: NullableText = Field(description="The variant served; null for a fallback.")
    html: str
    data: dict[str, Any]
    reason: str = Field(
        description="targeted:<variant>, experiment:<key>/<arm>, default, default:no_consent, "
        "fallback:<why>"
    )
    experiment: NullableObject = Field(description="The experiment and arm, if one decided.")
    explain: list[dict[str, str]] = _optional(
        "Rules tried; only with explain, for a secret key or staff."
    )


class DecideResponse(BaseModel):
    profile: Literal["found", "new", "anonymous", "unavailable"]
    personalization: bool = Field(description="Whether the profile was used.")
    snapshot: int
    placements: dict[str, Decision]
