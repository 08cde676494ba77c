"""The events endpoint's one request schema (an event, the batch) and its answers' schemas.

Every event of a batch validates through `Event`. A whole batch is validated in one call
(`events_validate`, the `EVENTS` adapter over `list[Event]`): pydantic-core checks every
declared field in Rust, and one Python function per event (`_event_checked`) does what types
cannot say. Only a batch holding a refused event is validated again event by event, so that
valid events are queued and each refused one is listed by index with its errors in the one error
shape. The envelope validates through `EventBatch`; its refusals are answered by core.errors'
handler. drf-spectacular documents the same classes (the request body, the 202/400 answers).

The rules (what the DRF EventSerializer checked before): the event id is any UUID spelling,
queued canonical; strings are trimmed, refuse U+0000 and lone surrogates, and take numbers as
their text; a visitor id refuses control characters; the value has at most 14 digits, 2 after
the point, and is queued as text quantized to the cent; occurred_at is ISO 8601 (naive: the
current time zone), within MAX_AGE before and MAX_FUTURE after now; properties nest at most
MAX_JSON_DEPTH levels, hold no U+0000 and no integer beyond 64 bits; unknown keys are refused
first, by name, before the declared fields are checked.

Why so: the per-field Python validators of a first version (one call per string for U+0000,
per event for the model) cost more than the hand-written validator it replaced
(docs/benchmarks.md, "Ingestion", has the figures). Here U+0000 and control characters are
refused by patterns pydantic-core runs in Rust, and each event costs one Python call.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired, cast

import orjson
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    WrapValidator,
    with_config,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from typing_extensions import TypedDict

from core.errors import MAX_SCHEMA_ERRORS, schema_errors
from core.schema import MAX_NAMED_UNKNOWN, StrictSchema, Trim
from core.validators import CONTROL_CHARACTERS, MAX_JSON_DEPTH, json_depth
from profiles.aggregates import CENT
from profiles.models import EventType

MAX_FUTURE = timedelta(minutes=10)
MAX_AGE = timedelta(days=365 * 5)
MAX_UTM = 20  # utm_* parameters of a context (five are standard)

# Checked in Rust by pydantic-core (a Python validator per string cost more than the rest of an
# event): no U+0000 (PostgreSQL cannot store it); for visitor ids no control character either
# (core.validators.CONTROL_CHARACTERS: it cannot travel in a URL path, a log line or a header).
NO_NUL = r"^[^\x00]*$"
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
_PATTERN_MESSAGES = {
    NO_NUL: "Null characters are not allowed.",
    NO_CONTROL: "Must not contain control characters.",
}
assert CONTROL_CHARACTERS.pattern == "[" + NO_CONTROL[3:-3] + "]"  # the same characters

_CUSTOM = EventType.CUSTOM.value
# The event types' values, validated by pydantic-core and queued as they are (strings).
if TYPE_CHECKING:
    EventTypeName = str
else:
    EventTypeName = Literal[tuple(EventType.values)]
# What str(uuid.UUID(...)) gives back, and what clients and mosaic.js send: recognised in a
# fraction of the time of building a UUID; other spellings are read by uuid.UUID.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Text200 = Annotated[str, Trim(min_length=1, max_length=200, pattern=NO_NUL)]
VisitorId = Annotated[str, Trim(min_length=1, max_length=200, pattern=NO_CONTROL)]
Amount = Annotated[Decimal, Field(max_digits=14, decimal_places=2, allow_inf_nan=False)]
# OpenAPI 3.0 (drf-spectacular's) spells "or null" as `nullable`, not JSON Schema's type null.
NullableAmount = Annotated[
    Amount | None,
    WithJsonSchema({"type": "number", "nullable": True, "multipleOf": 0.01}),
]
Currency = Annotated[str, Trim(pattern=r"^(?:[A-Z]{3})?$")]
# Parsed by _event_checked (it needs the batch's clock and time zone).
OccurredAt = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


def _text(max_length: int) -> Any:
    return Trim(max_length=max_length, pattern=NO_NUL)


@with_config(ConfigDict(extra="forbid", coerce_numbers_to_str=True))
class EventContext(TypedDict, total=False):
    """Where the event happened; only the keys sent are queued."""

    url: Annotated[str, _text(2000)]
    referrer: Annotated[str, _text(2000)]
    utm: Annotated[dict[str, Text200], Field(max_length=MAX_UTM)]
    user_agent: Annotated[str, _text(500)]
    locale: Annotated[str, _text(35)]


@with_config(ConfigDict(extra="forbid", coerce_numbers_to_str=True, title="Event"))
class EventFields(TypedDict):
    """One event of a batch (its declared fields; `Event` adds the checks across them)."""

    event_id: Annotated[
        str,
        Field(max_length=100, description="Idempotency key (any UUID spelling)."),
        WithJsonSchema({"type": "string", "format": "uuid"}),
    ]
    visitor: Annotated[
        VisitorId, Field(description="The visitor's id (pseudonymised before queueing).")
    ]
    user_id: NotRequired[
        Annotated[
            Text200,
            Field(description="The visitor's account id, if known (hashed before queueing)."),
        ]
    ]
    type: Annotated[EventTypeName, Field(description="custom needs a name.")]
    name: NotRequired[Annotated[str, _text(200), Field(description="Required for custom events.")]]
    properties: NotRequired[
        Annotated[
            dict[str, Any],
            Field(description=f"Free-form; nested at most {MAX_JSON_DEPTH} levels."),
        ]
    ]
    value: NotRequired[
        Annotated[
            NullableAmount,
            Field(
                description="An amount: a number or its text, at most 12 digits before the "
                "point, 2 after."
            ),
        ]
    ]
    currency: NotRequired[Annotated[Currency, Field(description="ISO 4217 code, or blank.")]]
    occurred_at: NotRequired[
        Annotated[OccurredAt, Field(description="ISO 8601; naive is UTC. Default: now.")]
    ]
    context: NotRequired[EventContext]


# As StrictSchema bounds a model's keys: an event, or its context, with far more keys than it
# knows is refused before any is looked at.
_EVENT_KEYS = 4 * len(EventFields.__annotations__) + MAX_NAMED_UNKNOWN
_CONTEXT_KEYS = 4 * len(EventContext.__annotations__) + MAX_NAMED_UNKNOWN


def _error(loc: tuple[str, ...], kind: str, message: str, data: Any, **ctx: Any) -> Any:
    return InitErrorDetails(
        type=PydanticCustomError(kind, message, ctx or None), loc=loc, input=data
    )


@dataclass(frozen=True, slots=True)
class Clock:
    """A batch's time, worked out once for all its events."""

    now: datetime
    zone: tzinfo
    earliest: datetime  # occurred_at bounds
    latest: datetime
    now_text: str  # the default occurred_at, as queued


def clock_at(now: datetime, zone: tzinfo) -> Clock:
    return Clock(now, zone, now - MAX_AGE, now + MAX_FUTURE, now.isoformat())


def _occurred_at(text: str, clock: Clock) -> datetime | str:
    """ISO 8601 text as an aware datetime of the current time zone, or why it is refused."""
    try:
        # What django.utils.dateparse.parse_datetime tries first; its own pattern after.
        parsed: datetime | None = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
    if parsed is None:
        return "Expected an ISO 8601 date and time (2026-11-01T10:00:00Z)."
    try:  # year 1 east of UTC, or 9999 west of it, has no UTC time
        parsed = (
            parsed.replace(tzinfo=clock.zone)
            if parsed.utcoffset() is None
            else parsed.astimezone(clock.zone)
        )
    except OverflowError:
        return "Out of the representable range."
    if parsed > clock.latest:
        return "Is in the future (more than 10 minutes ahead)."
    if parsed < clock.earliest:
        return "Is older than 5 years."
    return parsed


def _properties_refusal(value: dict[str, Any]) -> str | None:
    """Why free-form properties cannot be queued and stored, or None."""
    # One orjson call screens every rule below: a value holding at most MAX_JSON_DEPTH objects
    # and lists cannot nest deeper (brackets inside strings only make the screen stricter);
    # orjson writes U+0000 as \u0000 and refuses integers beyond 64 bits, and stops at 255
    # levels. The precise walks run only when it flags something.
    try:
        dumped = orjson.dumps(value)
    except TypeError:  # too deep for orjson, or an integer beyond 64 bits
        dumped = None
    if (
        dumped is not None
        and dumped.count(b"{") + dumped.count(b"[") <= MAX_JSON_DEPTH
        and b"\\u0000" not in dumped
    ):
        return None
    # Deep nesting exhausts the recursion of the JSON encoders (queue, storage): refused first,
    # by an iterative walk, before the recursive checks below.
    if json_depth(value) > MAX_JSON_DEPTH:
        return f"Nested more than {MAX_JSON_DEPTH} levels deep."
    # PostgreSQL's jsonb cannot hold U+0000: such a batch would fail at every retry.
    if _holds_nul(value):
        return "Must not contain NUL characters (\\u0000)."
    # The queue and the storage path write JSON with orjson, which keeps integers exact only
    # within 64 bits: refused here rather than rounded later.
    if _holds_big_int(value):
        return "Integers must lie between -2**63 and 2**64 - 1 (send larger ones as strings)."
    return None


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _holds_big_int(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return not -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return any(_holds_big_int(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_big_int(item) for item in value)
    return False


def _python_rules(data: Any, clock: Clock) -> tuple[Any, datetime | None, list[Any]]:
    """The rules types cannot say, on an event whose fields have their declared types where
    present: (the event id canonical, occurred_at parsed or None, refusals)."""
    errors = []
    event_id = data.get("event_id")
    if type(event_id) is str and not _CANONICAL_UUID.fullmatch(event_id):
        try:
            event_id = str(uuid.UUID(hex=event_id))
        except ValueError:
            errors.append(_error(("event_id",), "uuid_parsing", "Must be a valid UUID.", event_id))
    when: datetime | None = None
    text = data.get("occurred_at")
    if type(text) is str:
        parsed = _occurred_at(text, clock)
        if isinstance(parsed, str):
            errors.append(_error(("occurred_at",), "datetime_invalid", parsed, text))
        else:
            when = parsed
    properties = data.get("properties")
    if type(properties) is dict and properties:
        refusal = _properties_refusal(properties)
        if refusal is not None:
            errors.append(_error(("properties",), "properties_invalid", refusal, properties))
    if data.get("type") == _CUSTOM and not data.get("name"):
        errors.append(_error(("name",), "custom_name", "Required for custom events.", data))
    return event_id, when, errors


def _event_checked(data: Any, handler: Any, info: ValidationInfo) -> dict[str, Any]:
    """The declared fields (`handler`, in Rust), then the rules across them; returns the event
    as ingestion.queue.events_enqueue takes it (JSON types only, defaults filled)."""
    if type(data) is dict:
        if len(data) > _EVENT_KEYS:
            raise PydanticCustomError(
                "too_many_fields",
                "Too many fields ({count}); at most {known} are known.",
                {"count": len(data), "known": len(EventFields.__annotations__)},
            )
        context = data.get("context")
        if type(context) is dict and len(context) > _CONTEXT_KEYS:
            raise ValidationError.from_exception_data(
                "Event",
                [_error(("context",), "too_long", f"At most {_CONTEXT_KEYS} keys.", context)],
            )
    clock: Clock | None = (info.context or {}).get("clock")
    if clock is None:
        clock = clock_at(timezone.now(), timezone.get_current_timezone())
    try:
        event = handler(data)
    except ValidationError as exc:
        errors = exc.errors()
        unknown = [e for e in errors if e["type"] == "extra_forbidden"]
        if unknown:
            # Another shape: named by its unknown keys alone (the rest would be noise).
            raise ValidationError.from_exception_data("Event", unknown) from None  # type: ignore[arg-type]
        if type(data) is dict and len(errors) < MAX_SCHEMA_ERRORS:
            *_, more = _python_rules(data, clock)
            failed = {e["loc"][:1] for e in errors}
            more = [e for e in more if e["loc"] not in failed]
            if more:
                lines = [*errors, *more]
                raise ValidationError.from_exception_data("Event", lines) from None  # type: ignore[arg-type]
        raise
    event_id, when, refusals = _python_rules(event, clock)
    if refusals:
        raise ValidationError.from_exception_data("Event", refusals)
    event["event_id"] = event_id
    event.setdefault("name", "")
    event.setdefault("properties", {})
    if "value" in event and event["value"] is not None:
        event["value"] = str(event["value"].quantize(CENT))
    event["occurred_at"] = clock.now_text if when is None else when.isoformat()
    return event


Event = Annotated[EventFields, WrapValidator(_event_checked)]
EVENT = TypeAdapter(Event)
EVENTS = TypeAdapter(list[Event])


def event_errors(exc: ValidationError) -> list[dict[str, str]]:
    """An event's refusal in the one error shape (core.errors.schema_errors), with the messages
    of the patterns above said in words."""
    errors = schema_errors(exc)
    for line, error in zip(errors, exc.errors(include_url=False), strict=False):
        if error["type"] == "string_pattern_mismatch":
            pattern = (error.get("ctx") or {}).get("pattern")
            if pattern in _PATTERN_MESSAGES:
                line["message"] = _PATTERN_MESSAGES[pattern]
    return errors


def event_validate(
    raw: Any, *, now: datetime, zone: tzinfo
) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """(the queued form, []) for a valid event, (None, its errors by field) for another. A
    batch passes `now` and the current `zone` once for all its events."""
    return _event_validate(raw, clock_at(now, zone))


def _event_validate(raw: Any, clock: Clock) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    try:
        queued = EVENT.validate_python(raw, context={"clock": clock})
        return cast(dict[str, Any], queued), []
    except ValidationError as exc:
        return None, event_errors(exc)


def events_validate(
    events: list[Any], *, now: datetime, zone: tzinfo
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(queued forms of the valid events, refusals `{"index", "errors"}` of the others).

    The whole batch in one call; a batch with a refused event again event by event (its valid
    events are still queued)."""
    clock = clock_at(now, zone)
    try:
        valid = EVENTS.validate_python(events, context={"clock": clock})
        return cast(list[dict[str, Any]], valid), []
    except ValidationError:
        pass
    accepted, rejected = [], []
    for index, raw in enumerate(events):
        queued, errors = _event_validate(raw, clock)
        if queued is not None:
            accepted.append(queued)
        else:
            rejected.append({"index": index, "errors": errors})
    return accepted, rejected


def _batch_size(value: Any) -> Any:
    limit = settings.MOSAIC_EVENT_MAX_BATCH
    if isinstance(value, list) and len(value) > limit:
        raise PydanticCustomError(
            "too_long",
            "At most {limit} events per batch; got {count}.",
            {"limit": limit, "count": len(value)},
        )
    return value


class EventBatch(StrictSchema):
    """The envelope. Its events are validated by `events_validate`, so that one bad event does
    not refuse the others: declared here as Events for the document only."""

    events: Annotated[
        list[SkipValidation[Event]], BeforeValidator(_batch_size), Field(min_length=1)
    ] = Field(description="At most MOSAIC_EVENT_MAX_BATCH events (500 by default).")


# The answers.


def _optional(description: str = "") -> Any:
    """A field that may be absent (then None) but not null, left out of the document."""

    def drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(None, description=description or None, json_schema_extra=drop_default)


class EventErrorItem(BaseModel):
    field: str = Field(description="The field refused: `type`, `context.utm`, `body`.")
    message: str


class EventRejection(BaseModel):
    index: int = Field(description="The event's position in the batch (from 0).")
    errors: list[EventErrorItem]


class EventsAccepted(BaseModel):
    accepted: int = Field(description="How many events were queued.")
    rejected: list[EventRejection] = Field(description="The events refused, by index.")


class EventsRefused(BaseModel):
    """Nothing queued: the envelope is invalid, or no event of the batch is."""

    errors: list[EventErrorItem]
    accepted: int = _optional("0, when the envelope is valid but no event is.")
    rejected: list[EventRejection] = _optional("When the envelope is valid: each event's errors.")
