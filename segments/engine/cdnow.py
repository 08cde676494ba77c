"""The CDNOW sample (customer_id, YYYYMMDD, number_of_cds, dollar_value) as `EventRows`.

For tests, the real-data report (benchmarks/cdnow_models.py) and docs: the same rows
`manage.py import_events --format cdnow` stores (a purchase at midnight UTC of the date), read
straight into arrays so the pure cores can be checked on real data without a database.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from .features import EventRows


def day(text: str) -> float:
    """Midnight UTC of an ISO date (YYYY-MM-DD) as epoch seconds."""
    return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()


def read_cdnow(path: Path | str) -> EventRows:
    ids, stamps, values = [], [], []
    with open(path, encoding="ascii") as fh:
        next(fh)  # header
        for line_no, line in enumerate(fh, start=2):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise ValueError(f"line {line_no}: expected 4 columns")
            ids.append(int(parts[0]))
            stamps.append(parts[1])
            values.append(float(parts[3]))
    dates = (
        np.asarray([f"{s[:4]}-{s[4:6]}-{s[6:]}" for s in stamps], dtype="datetime64[D]")
        .astype("datetime64[s]")
        .astype(np.int64)
        .astype(np.float64)
    )
    n = len(ids)
    return EventRows(
        profile=np.asarray(ids, dtype=np.int64),
        type=np.full(n, "purchase", dtype=object),
        occurred_at=dates,
        value=np.asarray(values),
        name=np.full(n, "", dtype=object),
        category=np.full(n, "", dtype=object),
    )
