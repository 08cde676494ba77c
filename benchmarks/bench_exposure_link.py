"""Benchmark: the results' link of exposures to profiles when many exposures have no profile.

A computation from scratch first links every exposure of the experiment still without a profile
(experiments.results._exposures_link: a key lookup each). An exposure whose visitor never sent
an event stays unlinked and is looked up again by every such computation; this measures that
cost. On a cluster filled by bench_experiments.py (``--keep-cluster DIR``), it times the link
with every exposure linked, then adds ``--unlinked`` exposures (default 3,000,000) with keys no
profile has, times the link ``--rounds`` times, and removes them again (the cluster stays as
filled). Informs, judges nothing, exits 0; without ``--cluster`` (as `make bench` runs it) it
says so and skips.

Run: ``.venv/bin/python benchmarks/bench_exposure_link.py --cluster /tmp/exp-10m/pg``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks import _support as support  # noqa: E402
from benchmarks import bench_experiments as be  # noqa: E402

LINK_CODE = """
import json, time
from django.db import transaction
from experiments.models import Experiment, Exposure
from experiments.results import _exposures_link
e = Experiment.objects.get(key="bench")
with transaction.atomic():
    t = time.perf_counter()
    n = _exposures_link(Exposure.objects.filter(experiment=e))
    print(json.dumps({"linked": n, "seconds": round(time.perf_counter() - t, 2)}))
"""

UNLINKED_SQL = """
INSERT INTO experiments_exposure (experiment_id, arm_key, profile_key, profile_id, first_exposed_at)
SELECT %s, 'arm' || (i %% 10), 'z' || md5(i::text) || substr(md5((i + 3)::text), 1, 31), NULL,
       now() - interval '1 day'
FROM generate_series(1, %s) i
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", type=Path, help="bench_experiments.py's --keep-cluster DIR")
    parser.add_argument("--unlinked", type=int, default=3_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.cluster is None:
        # `make bench` runs every script without arguments: this one needs the filled cluster.
        print("skipped: needs --cluster DIR, filled by bench_experiments.py --keep-cluster DIR")
        return 0
    marker = args.cluster / "filled.json"
    if not marker.exists():
        sys.exit(f"{args.cluster} is not a filled cluster: run bench_experiments.py first")
    pg_bin = support.postgres_bin()
    if pg_bin is None:
        sys.exit("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    import psycopg

    experiment_id = json.loads(marker.read_text())["experiment_id"]
    with support.postgres_cluster(
        pg_bin, args.cluster, options=be.PG_OPTIONS, stop="fast"
    ) as database_url:
        env = {**os.environ, "DATABASE_URL": database_url}

        def link() -> dict:
            out = subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", LINK_CODE],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            return {**json.loads(out.stdout.splitlines()[-1]), "load": os.getloadavg()[0]}

        print("every exposure linked:", json.dumps(link()), flush=True)
        url = database_url.replace("postgres://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute(UNLINKED_SQL, [experiment_id, args.unlinked])
            conn.execute("ANALYZE experiments_exposure")
            added = round(time.perf_counter() - started, 1)
        print(f"{args.unlinked:,} exposures without a profile added in {added} s", flush=True)
        try:
            for _ in range(args.rounds):
                print("link:", json.dumps(link()), flush=True)
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DELETE FROM experiments_exposure WHERE profile_key LIKE 'z%'")
                conn.execute("VACUUM ANALYZE experiments_exposure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
