"""PostgreSQL COPY text encoding of stage 1's rows (events and their pending marks)."""

from __future__ import annotations

from typing import Any

import orjson

# COPY's text format, written by hand: psycopg's write_row formats each value through its
# adapters, slow per row (docs/benchmarks.md); here the values are strings already, so a row is one
# join. Text is escaped as COPY requires (backslash, tab, newline, carriage return); JSON from
# orjson holds no raw control characters, only backslashes to double.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_NULL = "\\N"


def copy_text(value: str) -> str:
    if "\\" in value or not value.isprintable():
        return value.translate(_COPY_ESCAPES)
    return value


def copy_json(value: Any) -> str:
    return orjson.dumps(value).decode().replace("\\", "\\\\")


def event_copy_line(pk: int, row: tuple, received_text: str | None = None) -> str:
    event_id, profile_id, type_, name, properties, value, currency, context, occurred, received = (
        row
    )
    value = _COPY_NULL if value is None else value
    return (
        f"{pk}\t{event_id}\t{profile_id}\t{copy_text(type_)}\t{copy_text(name)}\t"
        f"{copy_json(properties)}\t{value}\t{copy_text(currency)}\t"
        f"{copy_json(context)}\t{occurred.isoformat()}\t"
        f"{received_text or received.isoformat()}\n"
    )


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def pending_copy_line(row: tuple) -> str:
    event_pk, profile_id, event_uuid, type_, occurred_us, value, category = row
    category = _COPY_NULL if category is None else copy_text(category)
    value = _COPY_NULL if value is None else value
    return (
        f"{event_pk}\t{profile_id}\t{event_uuid}\t{copy_text(type_)}\t"
        f"{occurred_us}\t{value}\t{category}\n"
    )
