"""Benchmark: experiment bucketing and results.

1. Bucketing: ``--visitors`` simulated visitors (default 1,000,000; pseudonymous 64-hex keys)
   through ``experiments.engine.assign`` on a 3-arm experiment weighted 50/30/20: allocation
   error per arm in percentage points (target <= 0.5) and assignments per second.
2. Results: ``--exposures`` exposure rows (default 10,000,000) over ``--arms`` arms (10) and 5
   metrics (purchase conversion, revenue per visitor, add-to-cart conversion, page views per
   visitor, revenue per order) with their events, in a PostgreSQL cluster (initdb from
   /usr/lib/postgresql/*/bin; throwaway, or kept in ``--keep-cluster DIR`` and reused: the fill
   is the long part). Times (a) ``results_compute(rebuild=True)``, the first computation from
   scratch, and (b) an incremental beat after 1 % more data (new visitors with open windows,
   late events of old ones; the new visitors' exposures not yet linked to their profiles, as
   when flushed before them, so that the beat links them); target: within 60 s. Reports each
   phase's wall time, the database backend's CPU seconds, the load average and the peak RSS of
   the process that ran it.
   ``--check`` then times the direct aggregate and compares its sums with the stored ones.
   Skipped, loudly, without PostgreSQL binaries. ``--skip-results`` runs part 1 only;
   ``--fill-only`` fills (if needed) and stops. The exit status is 1 when (a) exceeds 60 s or
   an arm's allocation error exceeds 0.5 points (as it does with a small ``--visitors``).

Run: ``.venv/bin/python benchmarks/bench_experiments.py --visitors 100000 --exposures 200000``
for a quick look; without flags for the issue's sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.engine import ExperimentSpec, assign  # noqa: E402

WEIGHTS = (0.5, 0.3, 0.2)


def bucketing(visitors: int) -> dict:
    spec = ExperimentSpec(
        key="bench", seed="bench", arm_keys=("a", "b", "c"), weights=WEIGHTS, coverage=1.0
    )
    keys = [hashlib.sha256(f"visitor-{i}".encode()).hexdigest() for i in range(visitors)]
    counts = dict.fromkeys(spec.arm_keys, 0)
    started = time.perf_counter()
    for k in keys:
        counts[assign(spec, k).arm_key] += 1
    elapsed = time.perf_counter() - started
    errors = {
        arm: round(abs(counts[arm] / visitors - w) * 100, 4)
        for arm, w in zip(spec.arm_keys, WEIGHTS, strict=True)
    }
    return {
        "visitors": visitors,
        "weights": WEIGHTS,
        "counts": counts,
        "allocation_error_pp": errors,
        "max_error_pp": max(errors.values()),
        "assignments_per_s": round(visitors / elapsed),
    }


# Filled in PostgreSQL itself, one INSERT ... SELECT FROM generate_series per table, so the setup
# is not what is measured. Run by `_fill` with the tables' secondary indexes and constraints
# dropped (recreated after, then ANALYZE) and synchronous_commit off: building an index once is
# far cheaper than maintaining it row by row (476 s for 2,000,000 exposures the old way).
FILL_SQL = """
INSERT INTO segments_profile (id, key, user_key, traits, aggregates, consent, scores,
                              first_seen, last_seen)
SELECT i, md5(i::text) || md5((i + 7)::text), '', '{{}}', '{{}}', '{{}}', '{{}}', now(), now()
FROM generate_series({first}, {last}) i;
INSERT INTO experiments_exposure (experiment_id, arm_key, profile_key, profile_id,
                                  first_exposed_at)
SELECT {experiment_id}, 'arm' || (i % {arms}), md5(i::text) || md5((i + 7)::text), {profile_id},
       {base} + (i % 864000) * interval '1 second'
FROM generate_series({first}, {last}) i;
INSERT INTO segments_event
    (event_id, profile_id, type, name, properties, value, currency, context,
     occurred_at, received_at)
SELECT gen_random_uuid(), i, t.type, '', '{{}}',
       CASE WHEN t.type = 'purchase' THEN 10 + (i % 50) ELSE NULL END, '', '{{}}',
       {base} + ((i % 864000) + t.offset_s) * interval '1 second',
       least(now(), {base} + ((i % 864000) + t.offset_s) * interval '1 second')
FROM generate_series({first}, {last}) i
CROSS JOIN (VALUES ('purchase', 3600, 0.08), ('add_to_cart', 600, 0.2),
                   ('page_view', 60, 0.9), ('purchase', -86400, 0.05)) AS t(type, offset_s, rate)
WHERE random() < t.rate + (i % {arms}) * 0.002;
"""

# Late events for old visitors (inside their attribution windows, arriving now): what an
# incremental beat must pick up although those visitors' windows are closed.
LATE_EVENTS_SQL = """
INSERT INTO segments_event
    (event_id, profile_id, type, name, properties, value, currency, context,
     occurred_at, received_at)
SELECT gen_random_uuid(), i, 'purchase', '', '{{}}', 25, '', '{{}}',
       {base} + ((i % 864000) + 7200) * interval '1 second', now()
FROM generate_series(1, {last}, {step}) i;
"""

FILL_TABLES = ("segments_profile", "experiments_exposure", "segments_event")


def _fill(conn, *, first: int, last: int, arms: int, experiment_id: int, base: str) -> None:
    """Rows first..last of every table, with secondary indexes and constraints dropped during
    the inserts and recreated after."""
    tables = list(FILL_TABLES)
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('u', 'f')",
        [tables],
    ).fetchall()
    for table, name, _ in constraints:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
        " AND indexname NOT LIKE '%%_pkey'",
        [tables],
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET maintenance_work_mem = '512MB'")
    conn.execute(
        FILL_SQL.format(
            first=first,
            last=last,
            arms=arms,
            experiment_id=experiment_id,
            base=base,
            profile_id="i",  # linked, as the flush links a visitor who has a profile
        )
    )
    for _, definition in indexes:
        conn.execute(definition)
    for table, name, definition in constraints:
        conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    conn.execute(
        "SELECT setval(pg_get_serial_sequence('segments_profile', 'id'),"
        " (SELECT max(id) FROM segments_profile))"
    )
    conn.execute("ANALYZE")


SETUP_CODE = """
import json
from content.models import Placement, Variant
from experiments.models import Experiment, Arm, Metric, ExperimentMetric
p = Placement.objects.create(key="bench", name="Bench")
arms = int({arms})
e = Experiment.objects.create(key="bench", name="Bench", placement=p, status="running")
for i in range(arms):
    v = Variant.objects.create(placement=p, key=f"v{{i}}", name=f"v{{i}}")
    Arm.objects.create(experiment=e, key=f"arm{{i}}", name=f"arm{{i}}", variant=v,
                       is_control=i == 0, position=i)
orders = Metric.objects.create(key="orders", name="Orders", kind="mean", event_type="purchase")
specs = [
    ("purchase", "conversion", "purchase", "count", None, "primary"),
    ("revenue", "mean", "purchase", "sum_value", None, "secondary"),
    ("cart", "conversion", "add_to_cart", "count", None, "secondary"),
    ("views", "mean", "page_view", "count", None, "guardrail"),
    ("aov", "ratio", "purchase", "sum_value", orders, "secondary"),
]
for key, kind, et, agg, den, role in specs:
    m = Metric.objects.create(key=key, name=key, kind=kind, event_type=et, aggregation=agg,
                              denominator=den)
    ExperimentMetric.objects.create(experiment=e, metric=m, role=role)
print(json.dumps({{"experiment_id": e.pk}}))
"""

CHECK_CODE = """
import json, time
from django.db.models import Count
from django.utils import timezone
from experiments.management.commands.experiment_results import _equal
from experiments.models import Experiment, ResultState
from experiments.results import _exposures, results_aggregates_direct, results_aggregates_stored
e = Experiment.objects.get(key="bench")
as_of = ResultState.objects.get(experiment=e).as_of
counts = dict(_exposures(e, as_of).values_list("arm_key").annotate(n=Count("id")).order_by())
stored = results_aggregates_stored(experiment=e, counts=counts)
t = time.perf_counter()
direct = results_aggregates_direct(experiment=e, as_of=as_of)
elapsed = time.perf_counter() - t
print(json.dumps({"direct_seconds": round(elapsed, 2), "equal": _equal(stored, direct)}))
"""

# One phase per process, so that VmHWM is that phase's peak RSS. `rebuild=True`: from scratch
# (every visitor's values computed and stored); without: an incremental beat.
COMPUTE_CODE = """
import json, os, time
from experiments.models import Experiment
from experiments.results import results_compute
from django.db import connection
e = Experiment.objects.get(key="bench")
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    backend = cursor.fetchone()[0]
def cpu(pid):  # user + system seconds of a process (the database backend runs on this machine)
    fields = open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
c = cpu(backend)
t = time.perf_counter()
s = results_compute(experiment=e, rebuild={rebuild})
elapsed = time.perf_counter() - t
backend_cpu = cpu(backend) - c
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"seconds": round(elapsed, 2), "backend_cpu_seconds": round(backend_cpu, 1),
                  "load_average": os.getloadavg(), "users": s.users,
                  "metrics": len(s.data["metrics"]),
                  "computation": s.data.get("computation"),
                  "peak_rss_mb": round(int(hwm) / 1024, 1)}}))
"""

PG_OPTIONS = "-c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=30min"


def _restore(url: str, *, exposures: int, max_event: int) -> None:
    """The kept cluster back to its filled size: the rows phase (b) added go, and the stored
    values, so that the next run's phase (a) starts from an empty table."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE experiments_exposurevalue, experiments_resultstate")
        conn.execute("DELETE FROM segments_event WHERE id > %s", [max_event])
        conn.execute(
            "DELETE FROM experiments_exposure WHERE profile_key IN (SELECT key "
            "FROM segments_profile WHERE id > %s)",
            [exposures],
        )
        conn.execute("DELETE FROM segments_profile WHERE id > %s", [exposures])


def results(exposures: int, arms: int, keep: Path | None, fill_only: bool, check: bool) -> dict:
    """Part 2 in the kept cluster `keep`, or in a throwaway one removed after (its fill of
    10,000,000 exposures takes gigabytes)."""
    from benchmarks import _support as support

    pg_bin = support.postgres_bin()
    if pg_bin is None:
        return {"skipped": "no PostgreSQL binaries under /usr/lib/postgresql/*/bin"}
    if keep is not None:
        return _results(pg_bin, keep, exposures, arms, fill_only, check)
    throwaway = Path(tempfile.mkdtemp(prefix="mosaic-bench-experiments-"))
    try:
        return _results(pg_bin, throwaway / "pg", exposures, arms, fill_only, check)
    finally:
        shutil.rmtree(throwaway, ignore_errors=True)


def _results(
    pg_bin: Path, directory: Path, exposures: int, arms: int, fill_only: bool, check: bool
) -> dict:
    from benchmarks import _support as support

    with support.postgres_cluster(
        pg_bin, directory, options=PG_OPTIONS, stop="fast"
    ) as database_url:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "MOSAIC_VAR_DIR": str(directory.parent / "var"),
            "SECRET_KEY": secrets.token_urlsafe(32),
            "PSEUDONYMIZATION_KEY": secrets.token_urlsafe(32),
            "LOG_LEVEL": "WARNING",
            "DEBUG": "false",
        }

        def manage(*args: str) -> str:
            out = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if out.returncode:
                raise SystemExit(f"manage.py {args[0]} failed:\n{out.stderr[-3000:]}")
            return out.stdout

        import psycopg

        url = database_url.replace("postgres://", "postgresql://")
        manage("migrate", "--noinput", "-v", "0")
        marker = directory / "filled.json"
        filled = json.loads(marker.read_text()) if marker.exists() else None
        fill_seconds = None
        if filled is None or filled["exposures"] != exposures or filled["arms"] != arms:
            if filled is not None:
                raise SystemExit(f"{directory} holds {filled}: use another --keep-cluster DIR")
            setup = json.loads(manage("shell", "-c", SETUP_CODE.format(arms=arms)).splitlines()[-1])
            started = time.perf_counter()
            with psycopg.connect(url, autocommit=True) as conn:
                base = conn.execute("SELECT now() - interval '20 days'").fetchone()[0]
                _fill(
                    conn,
                    first=1,
                    last=exposures,
                    arms=arms,
                    experiment_id=setup["experiment_id"],
                    base=f"'{base.isoformat()}'::timestamptz",
                )
                max_event = conn.execute("SELECT max(id) FROM segments_event").fetchone()[0]
            fill_seconds = round(time.perf_counter() - started, 1)
            filled = {
                "exposures": exposures,
                "arms": arms,
                "base": base.isoformat(),
                "experiment_id": setup["experiment_id"],
                "fill_seconds": fill_seconds,
                "max_event": max_event,
            }
            marker.write_text(json.dumps(filled))
        with psycopg.connect(url, autocommit=True) as conn:
            events = conn.execute("SELECT count(*) FROM segments_event").fetchone()[0]
        out = {
            "exposures": exposures,
            "arms": arms,
            "metrics": 5,
            "events": events,
            "fill_seconds": fill_seconds,
            "cluster": str(directory),
        }
        if fill_only:
            return out
        if "max_event" not in filled:  # the filled size's last event id, noted once
            with psycopg.connect(url, autocommit=True) as conn:
                filled["max_event"] = conn.execute("SELECT max(id) FROM segments_event").fetchone()[
                    0
                ]
            marker.write_text(json.dumps(filled))
        max_event = filled["max_event"]
        _restore(url, exposures=exposures, max_event=max_event)  # after an interrupted run
        full = json.loads(manage("shell", "-c", COMPUTE_CODE.format(rebuild=True)).splitlines()[-1])
        out["full"] = {**full, "within_60s": full["seconds"] <= 60}
        # 1 % more: new visitors exposed in the last hours (windows open) with their events, and
        # late purchases of 0.5 % of the old visitors; removed again after the measurement so
        # that a kept cluster stays at its size.
        extra = max(1, exposures // 100)
        max_event = filled["max_event"]
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute(
                FILL_SQL.format(
                    first=exposures + 1,
                    last=exposures + extra,
                    arms=arms,
                    experiment_id=filled["experiment_id"],
                    base="now() - interval '6 hours' - interval '10 days'",
                    # Flushed before their profiles existed: the beat links them.
                    profile_id="NULL",
                ).replace("(i % 864000)", "((i % 20000) + 864000)")
            )
            conn.execute(
                LATE_EVENTS_SQL.format(
                    last=exposures, step=200, base=f"'{filled['base']}'::timestamptz"
                )
            )
            conn.execute("ANALYZE")
            added = round(time.perf_counter() - started, 1)
        try:
            beat = json.loads(
                manage("shell", "-c", COMPUTE_CODE.format(rebuild=False)).splitlines()[-1]
            )
            out["incremental"] = {
                **beat,
                "added_exposures": extra,
                "add_seconds": added,
                "within_60s": beat["seconds"] <= 60,
            }
            if check:
                # The stored sums after the beat against the direct single-pass aggregate
                # (the previous full computation), timed: both must agree.
                out["check"] = json.loads(manage("shell", "-c", CHECK_CODE).splitlines()[-1])
        finally:
            _restore(url, exposures=exposures, max_event=max_event)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--exposures", type=int, default=10_000_000)
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--skip-results", action="store_true")
    parser.add_argument(
        "--keep-cluster",
        type=Path,
        metavar="DIR",
        help="PostgreSQL cluster directory kept between runs: filled on first use, reused after",
    )
    parser.add_argument("--fill-only", action="store_true", help="fill (if needed) and stop")
    parser.add_argument(
        "--check",
        action="store_true",
        help="after the incremental beat, compare its sums with the direct aggregate (timed)",
    )
    args = parser.parse_args()
    out = {"bucketing": bucketing(args.visitors)}
    print(json.dumps(out["bucketing"]), flush=True)
    if not args.skip_results:
        out["results"] = results(
            args.exposures, args.arms, args.keep_cluster, args.fill_only, args.check
        )
        print(json.dumps(out["results"]), flush=True)
    res = out.get("results", {})
    ok = out["bucketing"]["max_error_pp"] <= 0.5 and res.get("full", {}).get("within_60s", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
