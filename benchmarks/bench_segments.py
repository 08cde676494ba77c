"""Benchmark: segments (issue #15). This file holds the RFM and static-list parts; the
condition-evaluation and time-driven-membership parts are functions of their own (seg-time).

Run ``.venv/bin/python benchmarks/bench_segments.py [--profiles N] [--ids N] [--only rfm|static]``.
The script builds a throwaway SQLite database under a temporary directory (``migrate``), fills it
with synthetic data (raw inserts, not timed), and removes it afterwards. No Redis is needed: the
RFM run writes no cached document (``refresh_documents=False``) and the static import runs no
segment.

RFM (``bench_rfm``): N profiles, each with 1-12 purchases spread over 400 days (so a 365-day
window leaves some out). Mosaic: ``segments.rfm.rfm_base_read`` + ``segments.engine.rfm.rfm_score``
(the scoring, from the database) and, separately, the whole ``rfm_scores_refresh`` (scores written
to the profiles). Baseline, same run, same database: bare pandas reading the same purchases with
``pandas.read_sql_query`` and computing the same scores (groupby, rank(method="min"),
quintiles); the two score arrays are checked equal. Median of three alternating rounds.
Target: Mosaic's scoring within 1.5x the pandas time.

Static lists (``bench_static``): a CSV of N visitor ids imported into a static segment
(parse + pseudonymise + insert, what ``segment_import`` does, progress bar off); ids per second.
Target: 100,000 ids in under 60 s.

Peak RSS of this process (VmHWM) is printed at the end. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

RFM_RATIO_TARGET = 1.5
STATIC_SECONDS_TARGET = 60.0  # for 100,000 ids
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
WINDOW_DAYS = 365


def _django(database: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _fill_purchases(profiles: int, seed: int = 7) -> int:
    """N profiles with 1-12 purchases each over 400 days before AS_OF (raw inserts)."""
    from django.db import connection, transaction

    from segments.models import Event, Profile

    rng = random.Random(seed)
    profile_table = connection.ops.quote_name(Profile._meta.db_table)
    event_table = connection.ops.quote_name(Event._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(AS_OF)
    events = 0
    chunk = 20_000
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, profiles, chunk):
            ids = range(start + 1, min(profiles, start + chunk) + 1)
            cursor.executemany(
                f"INSERT INTO {profile_table} (id, key, user_key, traits, aggregates, consent,"
                " scores, first_seen, last_seen)"
                " VALUES (%s, %s, '', '{}', '{}', '{}', '{}', %s, %s)",
                [(i, f"{i:064x}", now, now) for i in ids],
            )
            rows = []
            for i in ids:
                for _ in range(min(12, 1 + int(rng.expovariate(0.5)))):
                    when = AS_OF - timedelta(days=rng.uniform(0, 400))
                    value = round(rng.lognormvariate(3, 0.8), 2)
                    rows.append(
                        (
                            uuid.UUID(int=rng.getrandbits(128)).hex,
                            i,
                            connection.ops.adapt_datetimefield_value(when),
                            str(value),
                        )
                    )
            cursor.executemany(
                f"INSERT INTO {event_table} (event_id, profile_id, type, name, properties, value,"
                " currency, context, occurred_at, received_at) VALUES"
                " (%s, %s, 'purchase', '', '{}', %s, 'EUR', '{}', %s, %s)",
                [(e, p, v, w, now) for e, p, w, v in rows],
            )
            events += len(rows)
    return events


def _pandas_scores(database: Path):
    """The same scores, bare pandas: read the window's purchases, group, rank, cut."""
    import sqlite3

    import numpy as np
    import pandas as pd

    from segments.models import Event

    start = AS_OF - timedelta(days=WINDOW_DAYS)
    with sqlite3.connect(database) as conn:
        frame = pd.read_sql_query(
            f"SELECT profile_id, occurred_at, value FROM {Event._meta.db_table}"
            " WHERE type = 'purchase' AND occurred_at > ? AND occurred_at <= ?",
            conn,
            params=[_sqlite_time(start), _sqlite_time(AS_OF)],
            parse_dates=["occurred_at"],
        )
    frame["occurred_at"] = frame["occurred_at"].dt.tz_localize("UTC")
    per = frame.groupby("profile_id").agg(
        last=("occurred_at", "max"), n=("occurred_at", "size"), total=("value", "sum")
    )
    recency = (pd.Timestamp(AS_OF) - per["last"]).dt.days
    n = len(per)

    def score(values: pd.Series) -> np.ndarray:
        rank = values.rank(method="min").to_numpy()
        return (1 + (5 * (rank - 1)) // n).astype(np.int8)

    return per.index.to_numpy(), score(-recency), score(per["n"]), score(per["total"])


def _sqlite_time(value: datetime) -> str:
    from django.db import connection

    return connection.ops.adapt_datetimefield_value(value)


def _mosaic_scores():
    from segments import rfm
    from segments.engine.rfm import rfm_score

    ids, recency, frequency, monetary = rfm.rfm_base_read(as_of=AS_OF, window_days=WINDOW_DAYS)
    scores = rfm_score(recency, frequency, monetary)
    return ids, scores.r, scores.f, scores.m


def bench_rfm(profiles: int, database: Path, rounds: int = 3) -> dict:
    """Mosaic's RFM scoring from the database against bare pandas, same data, same run."""
    import numpy as np

    started = time.monotonic()
    events = _fill_purchases(profiles)
    fill_seconds = time.monotonic() - started
    mosaic_times, pandas_times = [], []
    mosaic = panda = None
    for _ in range(rounds):
        t = time.perf_counter()
        mosaic = _mosaic_scores()
        mosaic_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        panda = _pandas_scores(database)
        pandas_times.append(time.perf_counter() - t)
    for got, want, name in zip(mosaic, panda, ("ids", "R", "F", "M"), strict=True):
        if not np.array_equal(np.asarray(got), np.asarray(want)):
            raise AssertionError(f"RFM {name} differs between Mosaic and pandas")
    from segments import rfm

    t = time.perf_counter()
    refreshed = rfm.rfm_scores_refresh(
        as_of=AS_OF, window_days=WINDOW_DAYS, refresh_documents=False
    )
    refresh_seconds = time.perf_counter() - t
    mosaic_s, pandas_s = statistics.median(mosaic_times), statistics.median(pandas_times)
    return {
        "profiles": profiles,
        "purchases": events,
        "customers_in_window": len(mosaic[0]),
        "fill_seconds": fill_seconds,
        "mosaic_scoring_s": mosaic_s,
        "pandas_scoring_s": pandas_s,
        "ratio": mosaic_s / pandas_s,
        "mosaic_refresh_with_writes_s": refresh_seconds,
        "profiles_written": refreshed.written,
    }


def bench_static(ids: int) -> dict:
    """Import N visitor ids into a static segment: parse, pseudonymise, insert."""
    from segments.models import Segment
    from segments.static_lists import static_keys_from_csv, static_list_add

    segment = Segment.objects.create(
        key=f"bench-{uuid.uuid4().hex[:8]}", name="bench", kind="static"
    )
    text = "visitor_id\n" + "".join(f"visitor-{i}\n" for i in range(ids))
    t = time.perf_counter()
    id_type, keys = static_keys_from_csv(io.StringIO(text))
    result = static_list_add(segment=segment, id_type=id_type, keys=keys)
    seconds = time.perf_counter() - t
    return {"ids": ids, "added": result.added, "seconds": seconds, "ids_per_s": ids / seconds}


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000, help="RFM: synthetic profiles")
    parser.add_argument("--ids", type=int, default=100_000, help="static list: ids imported")
    parser.add_argument("--only", choices=["rfm", "static"], default=None)
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as tmp:
        database = Path(tmp) / "bench.sqlite3"
        _django(database)
        if args.only in (None, "rfm"):
            r = bench_rfm(args.profiles, database)
            print(
                f"RFM: {r['profiles']:,} profiles, {r['purchases']:,} purchases "
                f"({r['customers_in_window']:,} customers in the {WINDOW_DAYS}-day window; "
                f"data built in {r['fill_seconds']:.1f} s, not timed)"
            )
            print(
                f"  Mosaic scoring from the database: {r['mosaic_scoring_s']:.3f} s (median of 3)"
            )
            print(
                f"  bare pandas, same database:       {r['pandas_scoring_s']:.3f} s (median of 3)"
            )
            print(f"  ratio Mosaic / pandas: {r['ratio']:.2f} (target <= {RFM_RATIO_TARGET})")
            print(
                f"  rfm_scores_refresh with the scores written to {r['profiles_written']:,} "
                f"profiles: {r['mosaic_refresh_with_writes_s']:.3f} s"
            )
            failed |= r["ratio"] > RFM_RATIO_TARGET
        if args.only in (None, "static"):
            s = bench_static(args.ids)
            print(
                f"static list: {s['ids']:,} ids parsed, pseudonymised and stored in "
                f"{s['seconds']:.2f} s ({s['ids_per_s']:,.0f} ids/s; target 100,000 in "
                f"< {STATIC_SECONDS_TARGET:.0f} s)"
            )
            failed |= s["ids_per_s"] < 100_000 / STATIC_SECONDS_TARGET
    print(f"peak RSS: {_peak_rss_mb():.0f} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
