"""Static segments' lists: ids read from CSV or JSON, pseudonymised at once, stored as HMACs.

Raw ids never reach the database or a log: `static_ids_parse` validates and pseudonymises as
it reads, and everything after it handles only digests. A list with a bad line is refused whole
(nothing written), with the line named.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.pseudonym import pseudonymize

from .models import Segment, SegmentKind, StaticIdType, StaticListEntry

MAX_ID_LENGTH = 200
_BATCH = 5000
HEADERS = {
    "visitor": StaticIdType.VISITOR,
    "visitor_id": StaticIdType.VISITOR,
    "user": StaticIdType.USER,
    "user_id": StaticIdType.USER,
}


class StaticListError(ValueError):
    """Refused input; `field` names what was wrong (API field or "line N")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class StaticListResult:
    id_type: str
    received: int
    added: int
    removed: int
    size: int


def _check(raw: str, where: str) -> str:
    value = raw.strip()
    if not value:
        raise StaticListError(where, "Empty id.")
    if len(value) > MAX_ID_LENGTH:
        raise StaticListError(where, f"Id longer than {MAX_ID_LENGTH} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise StaticListError(where, "Id contains control characters.")
    return value


def static_keys_from_ids(ids: Iterable, *, field: str) -> list[str]:
    """Validated, pseudonymised, de-duplicated keys of a JSON list of ids (field[i] on error)."""
    keys: dict[str, None] = {}
    for index, raw in enumerate(ids):
        where = f"{field}[{index}]"
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            raise StaticListError(where, "Must be a string.")
        keys[pseudonymize(_check(str(raw), where))] = None
        if len(keys) > settings.MOSAIC_STATIC_LIST_MAX_IDS:
            raise StaticListError(field, f"More than {settings.MOSAIC_STATIC_LIST_MAX_IDS} ids.")
    return list(keys)


def static_keys_from_csv(
    stream: Iterable[str], *, id_type: str | None = None
) -> tuple[str, list[str]]:
    """(id type, keys) of a CSV of ids: one column (the first), optionally a header row naming
    the type (visitor_id or user_id); otherwise `id_type` (default visitor). Errors name the
    line."""
    reader = csv.reader(stream, strict=True)
    keys: dict[str, None] = {}
    chosen = id_type
    try:
        for row in reader:
            line = reader.line_num
            if not row or not "".join(row).strip():
                continue
            first = row[0]
            if line == 1 and first.strip().lower() in HEADERS:
                header_type = HEADERS[first.strip().lower()]
                if chosen and chosen != header_type:
                    raise StaticListError(
                        "id_type", f"The file's header says {header_type!r}, not {chosen!r}."
                    )
                chosen = header_type
                continue
            keys[pseudonymize(_check(first, f"line {line}"))] = None
            if len(keys) > settings.MOSAIC_STATIC_LIST_MAX_IDS:
                raise StaticListError(
                    "file", f"More than {settings.MOSAIC_STATIC_LIST_MAX_IDS} ids."
                )
    except csv.Error as exc:
        raise StaticListError(f"line {reader.line_num}", f"Not CSV: {exc}") from None
    except UnicodeDecodeError:
        raise StaticListError("file", "Not UTF-8 text.") from None
    return (chosen or StaticIdType.VISITOR), list(keys)


def text_lines(binary: io.BufferedIOBase | Iterable[bytes]) -> Iterator[str]:
    """An uploaded file's lines as text (UTF-8, BOM tolerated)."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


def _static_segment(segment: Segment) -> None:
    if segment.kind != SegmentKind.STATIC:
        raise StaticListError("key", f"Segment {segment.key!r} is not a static segment.")


def static_list_add(
    *,
    segment: Segment,
    id_type: str,
    keys: list[str],
    replace: bool = False,
    progress: Callable[[int], None] | None = None,
) -> StaticListResult:
    """Add these pseudonymised keys to the list (or make them the whole list: `replace`), in one
    transaction, in batches; a run then brings the membership up to date."""
    _static_segment(segment)
    if id_type not in StaticIdType.values:
        raise StaticListError("id_type", f"One of {', '.join(StaticIdType.values)}.")
    entries = StaticListEntry.objects.filter(segment=segment)
    with transaction.atomic():
        removed = 0
        if replace:
            removed, _ = entries.delete()
        before = entries.count()
        now = timezone.now()
        for start in range(0, len(keys), _BATCH):
            _entries_insert(segment.pk, id_type, keys[start : start + _BATCH], now)
            if progress is not None:
                progress(min(len(keys), start + _BATCH))
        size = entries.count()
    return StaticListResult(id_type, len(keys), size - before, removed, size)


def _entries_insert(segment_id: int, id_type: str, keys: list[str], now) -> None:
    """Insert entries, skipping those already listed: one executemany per batch (the ORM's
    bulk_create spends most of its time in Python building model instances and SQL)."""
    table = connection.ops.quote_name(StaticListEntry._meta.db_table)
    added_at = connection.ops.adapt_datetimefield_value(now)
    if connection.vendor == "postgresql":
        sql = (
            f"INSERT INTO {table} (segment_id, id_type, key, added_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING"
        )
    else:
        sql = (
            f"INSERT OR IGNORE INTO {table} (segment_id, id_type, key, added_at)"
            " VALUES (%s, %s, %s, %s)"
        )
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(segment_id, id_type, k, added_at) for k in keys])


def static_list_remove(*, segment: Segment, id_type: str, keys: list[str]) -> StaticListResult:
    _static_segment(segment)
    entries = StaticListEntry.objects.filter(segment=segment, id_type=id_type)
    removed = 0
    with transaction.atomic():
        for start in range(0, len(keys), _BATCH):
            n, _ = entries.filter(key__in=keys[start : start + _BATCH]).delete()
            removed += n
    size = StaticListEntry.objects.filter(segment=segment).count()
    return StaticListResult(id_type, len(keys), 0, removed, size)
