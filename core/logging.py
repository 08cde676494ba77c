"""Structured logs: one JSON object a line (standard library only), one event per product moment.

`log_event(logger, "events.accepted", accepted=3, rejected=0)` writes
`{"ts": ..., "level": "INFO", "logger": "ingestion.views", "event": "events.accepted",
"accepted": 3, "rejected": 0}`. Fields are counts, keys of configuration (placement, segment,
task) and outcomes: never a visitor id, a profile key, an IP address or an event's properties.
Plain `logger.warning(...)` calls come out as JSON too (their message in "event").
MOSAIC_LOG_FORMAT=plain switches to one human line (development).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

# Attributes every LogRecord has: whatever else a record carries came from `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=_opaque, ensure_ascii=False)


# Values written as text; any other object is written as its type's name only: Django's request
# log passes the request itself (extra={"request": ...}), whose repr names the path, and a path
# can hold a visitor id (/api/v1/profiles/<visitor>).
_AS_TEXT = (date, Decimal, UUID)


def _opaque(value: Any) -> str:
    if isinstance(value, _AS_TEXT):
        return str(value)
    return f"<{type(value).__name__}>"


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One product moment, with its fields as structured data."""
    logger.log(level, event, extra=fields)
