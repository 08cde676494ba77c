"""RFM scoring from the database: the active base's purchases in the window, scored by
segments.engine.rfm, written to Profile.scores["rfm"] (profile.rfm.* in conditions).

Recency is whole days from the last purchase to the scoring instant (`as_of`); frequency the
number of purchases in the window; monetary their summed value.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils import timezone

from profiles.models import Event, EventType, Profile

from .engine.rfm import SEGMENTS, rfm_score
from .scores import profile_scores_write

logger = logging.getLogger(__name__)

NAMESPACE = "rfm"
_CHUNK = 2000


@dataclass(slots=True)
class RfmResult:
    as_of: datetime
    window_days: int
    customers: int
    written: int
    cleared: int
    seconds: float
    # slug -> {"label", "customers", "mean_r", "mean_f", "mean_m", "mean_recency_days", ...}
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    profile_ids_changed: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "window_days": self.window_days,
            "customers": self.customers,
            "written": self.written,
            "cleared": self.cleared,
            "seconds": round(self.seconds, 3),
            "segments": self.segments,
        }


def rfm_base_read(*, as_of: datetime, window_days: int) -> tuple[np.ndarray, ...]:
    """(profile ids, recency days, frequency, monetary) of the active base, by profile id.

    One grouped query; recency is computed by the database (whole days, rounded down) and the
    rows go straight into numpy: converting each row's timestamp and Decimal in Python cost more
    than the query itself.
    """
    start = as_of - timedelta(days=window_days)
    table = connection.ops.quote_name(Event._meta.db_table)
    if connection.vendor == "postgresql":
        recency = "FLOOR(EXTRACT(EPOCH FROM (%s::timestamptz - MAX(occurred_at))) / 86400)"
        total = "COALESCE(SUM(value), 0)::float8"
    else:
        # julianday is a float: a hair added so that whole days never round down to one less.
        recency = "CAST(julianday(%s) - julianday(MAX(occurred_at)) + 1e-9 AS INTEGER)"
        total = "COALESCE(SUM(value), 0)"
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT profile_id, {recency}, COUNT(*), {total} FROM {table}"
            " WHERE type = %s AND occurred_at > %s AND occurred_at <= %s"
            " GROUP BY profile_id ORDER BY profile_id",
            [adapt(as_of), EventType.PURCHASE.value, adapt(start), adapt(as_of)],
        )
        rows = cursor.fetchall()
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.float64)
    data = np.array(rows, dtype=np.float64)
    return (
        data[:, 0].astype(np.int64),
        data[:, 1].astype(np.int64),
        data[:, 2].astype(np.int64),
        np.round(data[:, 3], 2),
    )


def rfm_scores_refresh(
    *, as_of: datetime | None = None, window_days: int | None = None, refresh_documents: bool = True
) -> RfmResult:
    """Score the active base and store each customer's scores on the profile (only the changed
    ones are written); customers who left the base lose theirs. The changed profiles' condition
    segments and cached documents are refreshed (conditions may read profile.rfm)."""
    started = time.monotonic()
    as_of = as_of or timezone.now()
    window_days = window_days or settings.MOSAIC_RFM_WINDOW_DAYS
    ids, recency, frequency, monetary = rfm_base_read(as_of=as_of, window_days=window_days)
    scores = rfm_score(recency, frequency, monetary)
    wanted: dict[int, dict[str, Any]] = {}
    for i, pid in enumerate(ids.tolist()):
        wanted[pid] = {
            "r": int(scores.r[i]),
            "f": int(scores.f[i]),
            "m": int(scores.m[i]),
            "segment": scores.segments[i],
            "recency_days": int(recency[i]),
            "frequency": int(frequency[i]),
            "monetary": round(float(monetary[i]), 2),
        }
    # What profiles hold now: write only the differences (and clear those no longer scored).
    held = dict(
        Profile.objects.filter(scores__has_key=NAMESPACE)
        .order_by()
        .values_list("pk", f"scores__{NAMESPACE}")
    )
    changes: dict[int, dict[str, Any] | None] = {
        pid: value for pid, value in wanted.items() if held.get(pid) != value
    }
    cleared = [pid for pid in held if pid not in wanted]
    changes.update(dict.fromkeys(cleared))
    changed_ids = sorted(changes)
    for start in range(0, len(changed_ids), _CHUNK):
        chunk = changed_ids[start : start + _CHUNK]
        profile_scores_write(namespace=NAMESPACE, values={pid: changes[pid] for pid in chunk})
        if refresh_documents:
            from profiles.services import profiles_refresh

            profiles_refresh(profile_ids=chunk)
    result = RfmResult(
        as_of=as_of,
        window_days=window_days,
        customers=len(ids),
        written=len(changes) - len(cleared),
        cleared=len(cleared),
        seconds=time.monotonic() - started,
        segments=_segment_summary(scores, recency, frequency, monetary),
        profile_ids_changed=changed_ids,
    )
    logger.info(
        "rfm_scores_refresh %s", {k: v for k, v in result.as_dict().items() if k != "segments"}
    )
    return result


def _segment_summary(scores, recency, frequency, monetary) -> dict[str, dict[str, Any]]:
    names = np.array(scores.segments, dtype=object)
    summary = {}
    for slug, label in SEGMENTS:
        mask = names == slug if len(names) else np.zeros(0, dtype=bool)
        n = int(mask.sum())
        summary[slug] = {
            "label": label,
            "customers": n,
            "mean_r": round(float(scores.r[mask].mean()), 2) if n else None,
            "mean_f": round(float(scores.f[mask].mean()), 2) if n else None,
            "mean_m": round(float(scores.m[mask].mean()), 2) if n else None,
            "mean_recency_days": round(float(recency[mask].mean()), 1) if n else None,
            "mean_frequency": round(float(frequency[mask].mean()), 2) if n else None,
            "mean_monetary": round(float(monetary[mask].mean()), 2) if n else None,
        }
    return summary
