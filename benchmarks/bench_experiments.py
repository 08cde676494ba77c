"""Benchmark: experiment bucketing and results.

1. Bucketing: ``--visitors`` simulated visitors (default 1,000,000; pseudonymous 64-hex keys)
   through ``experiments.engine.assign`` on a 3-arm experiment weighted 50/30/20: allocation
   error per arm in percentage points (target <= 0.5) and assignments per second.
2. Results: ``--exposures`` exposure rows (default 10,000,000) over ``--arms`` arms (10) and 5
   metrics (purchase conversion, revenue per visitor, add-to-cart conversion, page views per
   visitor, revenue per order) with their events, in a throwaway PostgreSQL cluster (initdb from
   /usr/lib/postgresql/*/bin, as in bench_ingest); times ``experiments.results.results_compute``
   (target: within 60 s) and reports the peak RSS of the process that ran it. Skipped, loudly,
   without PostgreSQL binaries. ``--skip-results`` runs part 1 only.

Run: ``.venv/bin/python benchmarks/bench_experiments.py --visitors 100000 --exposures 200000``
for a quick look; without flags for the issue's sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
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


# Filled in PostgreSQL itself (generate_series), so the setup is not what is measured.
FILL_SQL = """
INSERT INTO segments_profile (key, user_key, traits, aggregates, consent, first_seen, last_seen)
SELECT md5(i::text) || md5((i + 7)::text), '', '{{}}', '{{}}', '{{}}', now(), now()
FROM generate_series(1, {n}) i;
INSERT INTO experiments_exposure (experiment_id, arm_key, profile_key, first_exposed_at)
SELECT {experiment_id}, 'arm' || (i % {arms}), md5(i::text) || md5((i + 7)::text),
       now() - interval '20 days' + (i % 864000) * interval '1 second'
FROM generate_series(1, {n}) i;
INSERT INTO segments_event
    (event_id, profile_id, type, name, properties, value, currency, context,
     occurred_at, received_at)
SELECT gen_random_uuid(), p.id, t.type, '', '{{}}',
       CASE WHEN t.type = 'purchase' THEN 10 + (p.id % 50) ELSE NULL END, '', '{{}}',
       now() - interval '20 days' + ((p.id % 864000) + t.offset_s) * interval '1 second', now()
FROM segments_profile p
CROSS JOIN (VALUES ('purchase', 3600, 0.08), ('add_to_cart', 600, 0.2),
                   ('page_view', 60, 0.9), ('purchase', -86400, 0.05)) AS t(type, offset_s, rate)
WHERE random() < t.rate + (p.id % {arms}) * 0.002;
ANALYZE;
"""

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

COMPUTE_CODE = """
import json, resource, time
from experiments.models import Experiment
from experiments.results import results_compute
e = Experiment.objects.get(key="bench")
t = time.perf_counter()
s = results_compute(experiment=e)
elapsed = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": round(elapsed, 2), "users": s.users, "metrics": len(s.data["metrics"]),
                  "peak_rss_mb": round(int(hwm) / 1024, 1)}))
"""


def results(exposures: int, arms: int) -> dict:
    from benchmarks.bench_ingest import _pg_bin, postgres_cluster

    pg_bin = _pg_bin()
    if pg_bin is None:
        return {"skipped": "no PostgreSQL binaries under /usr/lib/postgresql/*/bin"}
    workdir = Path(tempfile.mkdtemp(prefix="mosaic-bench-experiments-"))
    with postgres_cluster(pg_bin, workdir) as database_url:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "MOSAIC_VAR_DIR": str(workdir / "var"),
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

        manage("migrate", "--noinput", "-v", "0")
        setup = json.loads(manage("shell", "-c", SETUP_CODE.format(arms=arms)).splitlines()[-1])
        import psycopg

        started = time.perf_counter()
        with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as conn:
            conn.execute(
                FILL_SQL.format(n=exposures, arms=arms, experiment_id=setup["experiment_id"])
            )
            events = conn.execute("SELECT count(*) FROM segments_event").fetchone()[0]
        fill_seconds = round(time.perf_counter() - started, 1)
        measured = json.loads(manage("shell", "-c", COMPUTE_CODE).splitlines()[-1])
    return {
        "exposures": exposures,
        "arms": arms,
        "metrics": 5,
        "events": events,
        "fill_seconds": fill_seconds,
        **measured,
        "within_60s": measured["seconds"] <= 60,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--exposures", type=int, default=10_000_000)
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--skip-results", action="store_true")
    args = parser.parse_args()
    out = {"bucketing": bucketing(args.visitors)}
    print(json.dumps(out["bucketing"]), flush=True)
    if not args.skip_results:
        out["results"] = results(args.exposures, args.arms)
        print(json.dumps(out["results"]), flush=True)
    ok = out["bucketing"]["max_error_pp"] <= 0.5 and out.get("results", {}).get("within_60s", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
