"""Reading transaction files into event dicts (the shape segments.services.events_store takes).

Each row's event_id is a uuid5 of the format, line number and raw line: importing the same file
again yields the same ids, so a re-run stores nothing new; an edited line becomes a new event.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

NAMESPACE = uuid.UUID("6f0f3c2e-5d8b-4d36-9a51-0c4b3c7f4e21")


class ImportRowError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def _event_id(fmt: str, line_no: int, line: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{fmt}:{line_no}:{line.rstrip(chr(10)).rstrip(chr(13))}"))


def _money(text: str, line_no: int) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ImportRowError(line_no, f"not an amount: {text!r}") from None
    return str(value.quantize(Decimal("0.01")))


def read_cdnow(path: Path, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """CDNOW_master.txt: whitespace-separated customer_id, YYYYMMDD, number_of_cds, dollars."""
    with path.open(encoding="ascii") as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts or parts[0] == "customer_id":
                continue
            if limit is not None and line_no > limit:
                return
            if len(parts) != 4:
                raise ImportRowError(line_no, f"expected 4 columns, got {len(parts)}")
            customer, day, cds, dollars = parts
            try:
                occurred = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
                quantity = int(cds)
            except ValueError as exc:
                raise ImportRowError(line_no, str(exc)) from None
            yield {
                "event_id": _event_id("cdnow", line_no, line),
                "visitor": f"cdnow:{customer}",
                "type": "purchase",
                "name": "",
                "properties": {"quantity": quantity, "source": "cdnow"},
                "value": _money(dollars, line_no),
                "currency": "USD",
                "context": {},
                "occurred_at": occurred.isoformat(),
            }


CSV_COLUMNS = ("visitor", "occurred_at", "value")


def read_csv(path: Path, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """A header row with visitor, occurred_at (ISO 8601), value; optional currency, quantity."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ImportRowError(1, f"missing column(s): {', '.join(missing)}")
        for row in reader:
            line_no = reader.line_num
            if limit is not None and line_no > limit:
                return
            try:
                occurred = datetime.fromisoformat(row["occurred_at"])
            except ValueError:
                raise ImportRowError(line_no, f"bad occurred_at {row['occurred_at']!r}") from None
            if occurred.tzinfo is None:
                occurred = occurred.replace(tzinfo=UTC)
            properties: dict[str, Any] = {"source": path.name}
            if row.get("quantity"):
                properties["quantity"] = int(row["quantity"])
            yield {
                "event_id": _event_id("csv", line_no, ",".join(row[c] or "" for c in row)),
                "visitor": row["visitor"],
                "type": "purchase",
                "name": "",
                "properties": properties,
                "value": _money(row["value"], line_no),
                "currency": (row.get("currency") or "").upper(),
                "context": {},
                "occurred_at": occurred.isoformat(),
            }


READERS = {"cdnow": read_cdnow, "csv": read_csv}
