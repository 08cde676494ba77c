"""Reading ``user,item,weight,timestamp`` interaction files with bounded memory and exact errors.

Format: a header row naming the columns ``user``, ``item``, ``weight`` and ``timestamp`` (any
order, case and surrounding spaces ignored; other columns ignored); one interaction per row.
``weight`` is a finite number (a rating or a count); rows with a weight <= 0 are counted and left
out (no interaction to learn from). ``timestamp`` is Unix seconds (integer or decimal) or an
ISO-8601 date/time (naive ones are UTC). Ids are at most ``MAX_ID_LENGTH`` characters.

Limits: at most ``max_rows`` data rows (default 10,000,000; memory is about 32 bytes per row
plus the distinct ids) and fields of at most ``MAX_FIELD`` characters; beyond either the file is
refused. A malformed row is refused with its line number and column.
"""

from __future__ import annotations

import csv
import math
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .evaluation import Dataset

REQUIRED = ("user", "item", "weight", "timestamp")
MAX_ID_LENGTH = 256
MAX_FIELD = 4096
DEFAULT_MAX_ROWS = 10_000_000
# Unix seconds between 1970 and 2200; larger numbers are almost surely milliseconds
MAX_UNIX_SECONDS = 7_258_118_400


class CsvError(ValueError):
    """A refused file: ``line`` (1-based, None for the file as a whole) and ``column``."""

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None):
        self.line, self.column, self.message = line, column, message
        where = []
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass
class LoadedInteractions:
    dataset: Dataset
    user_labels: list[str]
    item_labels: list[str]
    ignored_non_positive: int


def parse_timestamp(raw: str) -> float:
    """Unix seconds from a number or an ISO-8601 string; ValueError if neither."""
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        if not math.isfinite(value):
            raise ValueError("timestamp must be finite")
        if abs(value) > MAX_UNIX_SECONDS:
            raise ValueError("timestamp out of range (Unix seconds expected, not milliseconds)")
        return value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("timestamp is neither Unix seconds nor ISO-8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def read_interactions(path: str | Path, *, max_rows: int = DEFAULT_MAX_ROWS) -> LoadedInteractions:
    """Read and validate an interactions file into coded arrays (see the module docstring)."""
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return _read(csv.reader(handle), max_rows)
    except UnicodeDecodeError as exc:
        raise CsvError(f"not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise CsvError(f"malformed CSV ({exc})", line=None) from None
    finally:
        csv.field_size_limit(previous_limit)


def _read(reader, max_rows: int) -> LoadedInteractions:
    try:
        header = next(reader)
    except StopIteration:
        raise CsvError("empty file: a header row user,item,weight,timestamp is required") from None
    except csv.Error as exc:
        raise CsvError(f"malformed CSV ({exc})", line=1) from None
    names = [h.strip().lower() for h in header]
    positions = {}
    for name in REQUIRED:
        if names.count(name) != 1:
            problem = "missing" if name not in names else "repeated"
            raise CsvError(f"header: column {problem}", line=1, column=name)
        positions[name] = names.index(name)
    width = len(names)
    u_col, i_col, w_col, t_col = (positions[n] for n in REQUIRED)
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    # typed arrays: 8 bytes per value instead of a Python object per value
    u_codes, i_codes, weights, stamps = array("q"), array("q"), array("d"), array("d")
    ignored = 0
    rows = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CsvError(f"malformed CSV ({exc})", line=reader.line_num) from None
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            raise CsvError(f"expected {width} fields, found {len(row)}", line=line)
        rows += 1
        if rows > max_rows:
            raise CsvError(f"more than {max_rows} rows (the limit; see --max-rows)", line=line)
        user, item = row[u_col].strip(), row[i_col].strip()
        for name, value in (("user", user), ("item", item)):
            if not value:
                raise CsvError("empty id", line=line, column=name)
            if len(value) > MAX_ID_LENGTH:
                raise CsvError(f"id longer than {MAX_ID_LENGTH} characters", line=line, column=name)
        try:
            weight = float(row[w_col])
        except ValueError:
            raise CsvError(
                f"not a number: {row[w_col][:40]!r}", line=line, column="weight"
            ) from None
        if not math.isfinite(weight):
            raise CsvError("weight must be finite", line=line, column="weight")
        try:
            stamp = parse_timestamp(row[t_col])
        except ValueError as exc:
            raise CsvError(f"{exc}: {row[t_col][:40]!r}", line=line, column="timestamp") from None
        if weight <= 0:
            ignored += 1
            continue
        u_codes.append(users.setdefault(user, len(users)))
        i_codes.append(items.setdefault(item, len(items)))
        weights.append(weight)
        stamps.append(stamp)
    if not u_codes:
        raise CsvError("no interaction with a positive weight")
    dataset = Dataset(
        users=np.frombuffer(u_codes, dtype=np.int64),
        items=np.frombuffer(i_codes, dtype=np.int64),
        weights=np.frombuffer(weights, dtype=np.float64).astype(np.float32),
        timestamps=np.frombuffer(stamps, dtype=np.float64),
        n_users=len(users),
        n_items=len(items),
    )
    return LoadedInteractions(
        dataset=dataset,
        user_labels=list(users),
        item_labels=list(items),
        ignored_non_positive=ignored,
    )
