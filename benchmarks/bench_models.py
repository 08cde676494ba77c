"""Benchmark: model segments on synthetic profiles with planted groups and a planted propensity.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/bench_models.py --profiles 1000000

Everything is throwaway: by default a PostgreSQL cluster (production's database; initdb from
/usr/lib/postgresql/*/bin, as bench_ingest does) under a temporary directory, migrated first,
removed at the end (`--database sqlite` for the development default). Data: `--profiles`
profiles in four planted groups (lapsed: bought in the first 120 days only; recent: only in the
last 125; regulars; VIPs: higher rates and order values; one purchase at least), about 7.8
purchases a profile over 365 days, filled with COPY (the event table's indexes built once after
the fill); group membership is the truth for the adjusted Rand index.

a. Cluster pipeline, as a cluster segment computes it: features from the database in chunks
   (analysis.selectors.feature_matrix_from_db: recency, frequency, monetary), log1p + standard
   scaling, K-Means with k chosen over 2..10 (silhouette and Davies-Bouldin on a 5,000 sample;
   MiniBatchKMeans above 200,000 profiles), labels written back onto the profiles
   (analysis.model_segments.profile_model_scores_write). No stability check (the bare
   computation has none either).
b. Bare pandas + scikit-learn, in the same process, computing the same result: one query of the
   purchases into a DataFrame (what pandas.read_sql does), groupby to recency/frequency/monetary,
   the same scaling and the same K-Means loop (same estimator, seeds and sample), the same
   document change written back with COPY into a temporary table and one UPDATE.
   Rounds alternate (bare, pipeline, pipeline, bare, ...); each side's best round by CPU counts.
   CPU seconds are this process's plus those of the PostgreSQL backend serving its connection
   (/proc/<pid>/stat), wall seconds are printed beside them.
c. Propensity: "purchase in the 60 days after day 240" trained on the planted rates (engine
   time split: features as of day 240 and validated as of day 300), training and scoring time
   of gradient boosting, AUC beside the recency baseline. `--part cluster|propensity` runs a+b
   or c alone (c needs no database).

Prints one table; peak RSS from getrusage; progress lines on stderr. Exits 1 when a target is
missed: pipeline <= 1.5x bare (CPU), adjusted Rand >= 0.9 on the planted groups, peak RSS <= 4 GB.
OMP_NUM_THREADS=1 on a shared machine: with more OpenMP threads than free cores, scikit-learn's
threads spin waiting for each other (most likely why an earlier 100,000-profile run's GBM fit
took 376 s of wall time; the 1,000,000-profile fit with one thread took 53 s).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUPS = [
    # (share, purchases per day while active, mean order value, active from day, to day)
    (0.40, 0.02, 15.0, 0, 120),  # lapsed: bought early in the year only
    (0.30, 0.02, 15.0, 240, 365),  # new and recent
    (0.20, 0.03, 40.0, 0, 365),  # regulars
    (0.10, 0.08, 150.0, 0, 365),  # VIPs
]
DAYS = 365
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
FEATURES = ["purchase_recency_days", "frequency", "monetary"]


def _setup(workdir: Path, database_url: str | None) -> None:
    os.environ["MOSAIC_VAR_DIR"] = str(workdir / "var")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _generate(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(GROUPS), size=n, p=[g[0] for g in GROUPS])
    planted = np.array(GROUPS)[truth]
    counts = rng.poisson(planted[:, 1] * (planted[:, 4] - planted[:, 3])) + 1
    owner = np.repeat(np.arange(n), counts)
    days = rng.uniform(np.repeat(planted[:, 3], counts), np.repeat(planted[:, 4], counts))
    amount = np.round(rng.gamma(4.0, np.repeat(planted[:, 2], counts) / 4.0), 2)
    return truth, owner, days, amount


def _insert(n: int, owner, days, amount) -> int:
    """The profiles and their purchases; returns the first profile id (ids are consecutive)."""
    from django.db import connection, transaction

    start_ts = START.timestamp()
    pg = connection.vendor == "postgresql"
    with transaction.atomic(), connection.cursor() as cur:
        recreate = _drop_event_indexes(cur) if pg else []
        if pg:
            with cur.cursor.copy(
                "COPY segments_profile (key, user_key, traits, aggregates, consent, scores,"
                " first_seen, last_seen) FROM STDIN"
            ) as copy:
                stamp = START.isoformat(" ")
                copy.write(
                    "".join(
                        f"bench{i:08d}\t\t{{}}\t{{}}\t{{}}\t{{}}\t{stamp}\t{stamp}\n"
                        for i in range(n)
                    )
                )
        else:
            cur.executemany(
                "INSERT INTO segments_profile (key, user_key, traits, aggregates, consent, scores,"
                " first_seen, last_seen) VALUES (%s, '', '{}', '{}', '{}', '{}', %s, %s)",
                [(f"bench{i:08d}", START, START) for i in range(n)],
            )
        cur.execute("SELECT min(id), max(id) FROM segments_profile")
        first_id, last_id = cur.fetchone()
        assert last_id - first_id == n - 1, "profile ids are not consecutive"
        for lo in range(0, len(owner), 500_000):
            part = slice(lo, lo + 500_000)
            micros = np.round((start_ts + days[part] * 86400) * 1e6).astype(np.int64)
            stamps = np.char.replace(
                np.datetime_as_string(micros.astype("datetime64[us]"), unit="us"), "T", " "
            )
            rows = zip(
                (first_id + owner[part]).tolist(),
                stamps.tolist(),
                amount[part].tolist(),
                strict=True,
            )
            if connection.vendor == "postgresql":
                # Event ids from the server (gen_random_uuid): uuid4 per row in Python was most
                # of the fill's client time.
                cur.execute(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS bench_fill"
                    " (profile_id bigint, at timestamptz, value numeric(14, 2))"
                )
                with cur.cursor.copy("COPY bench_fill FROM STDIN") as copy:
                    copy.write("".join(f"{p}\t{at}+00\t{v:.2f}\n" for p, at, v in rows))
                cur.execute(
                    "INSERT INTO segments_event (event_id, profile_id, type, name, properties,"
                    " value, currency, context, occurred_at, received_at) SELECT"
                    " gen_random_uuid(), profile_id, 'purchase', '', '{}', value, 'USD', '{}',"
                    " at, at FROM bench_fill; TRUNCATE bench_fill"
                )
            else:
                cur.executemany(
                    "INSERT INTO segments_event (event_id, profile_id, type, name, properties,"
                    " value, currency, context, occurred_at, received_at) VALUES (%s, %s,"
                    " 'purchase', '', '{}', %s, 'USD', '{}', %s, %s)",
                    [(uuid.uuid4().hex, p, f"{v:.2f}", at, at) for p, at, v in rows],
                )
        # Same indexes and constraints as migrated, built once over the filled table.
        for statement in recreate:
            cur.execute(statement)
    if pg:
        with connection.cursor() as cur:
            cur.execute("ANALYZE segments_profile; ANALYZE segments_event")
    return first_id


def _drop_event_indexes(cur) -> list[str]:
    """Drop the event table's secondary indexes and unique constraints for the bulk fill (one
    build after it is several times faster than maintaining them per row); returns the
    statements that recreate them exactly."""
    cur.execute("SET maintenance_work_mem = '512MB'")
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'segments_event'::regclass AND contype = 'u'"
    )
    constraints = cur.fetchall()
    cur.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = 'segments_event'::regclass AND NOT i.indisprimary AND NOT EXISTS"
        " (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
    )
    indexes = cur.fetchall()
    for name, _ in constraints:
        cur.execute(f'ALTER TABLE segments_event DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f"DROP INDEX {name}")
    return [f'ALTER TABLE segments_event ADD CONSTRAINT "{n}" {d}' for n, d in constraints] + [
        d for _, d in indexes
    ]


def _kmeans_loop(Z, seed=0, sample=5000):
    """Both sides call the engine's choose_k: the same estimator, seeds and sample."""
    from segments.engine.clustering import choose_k

    chosen = choose_k(Z, (2, 10), seed=seed, sample=sample)
    return chosen["model"].labels_, chosen["k"]


def _backend_cpu() -> float:
    """CPU seconds of this connection's PostgreSQL backend process (0 on SQLite)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Clock:
    """Wall-clock and CPU seconds since creation: this process (all threads) plus the database
    server's backend serving its connection, since work pushed into the server is not free."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time() + _backend_cpu()

    def lap(self) -> tuple[float, float]:
        return (
            time.perf_counter() - self.wall,
            time.process_time() + _backend_cpu() - self.cpu,
        )


def pipeline(as_of: dt.datetime):
    from analysis.model_segments import profile_model_scores_write
    from analysis.selectors import feature_matrix_from_db
    from segments.engine.clustering import Scaler
    from segments.engine.features import spec_for_key

    clock = _Clock()
    specs = [spec_for_key(k) for k in FEATURES]
    fm, _ = feature_matrix_from_db(as_of=as_of, specs=specs, chunk=20_000)
    read = clock.lap()
    X = fm.numeric_subset(FEATURES)
    Z = Scaler.fit(X, FEATURES, "standard").transform(X)
    labels, k = _kmeans_loop(Z)
    clustered = clock.lap()
    profile_model_scores_write(
        segment_key="bench", values=dict(zip(fm.profile_ids.tolist(), labels.tolist(), strict=True))
    )
    return fm.profile_ids, labels, k, {"read": read, "cluster": clustered, "total": clock.lap()}


def bare(as_of: dt.datetime):
    """What an analyst would write by hand with pandas and scikit-learn: one query, groupby,
    the same scaling and K-Means loop, one bulk write (COPY into a temporary table and one
    UPDATE on PostgreSQL; executemany on SQLite)."""
    import pandas as pd
    from django.db import connection, transaction
    from sklearn.preprocessing import StandardScaler

    clock = _Clock()
    connection.ensure_connection()
    pg = connection.vendor == "postgresql"
    at = (
        "EXTRACT(EPOCH FROM occurred_at)::float8"
        if pg
        else ("(julianday(occurred_at) - 2440587.5) * 86400.0")
    )
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT profile_id, {at} AS at, CAST(value AS {'float8' if pg else 'REAL'}) AS value"
            " FROM segments_event WHERE type = 'purchase' AND occurred_at <= %s",
            [as_of],
        )
        df = pd.DataFrame(cur.fetchall(), columns=["profile_id", "at", "value"])
    g = df.groupby("profile_id").agg(
        last=("at", "max"), frequency=("value", "size"), monetary=("value", "sum")
    )
    del df
    recency = (as_of.timestamp() - g["last"].to_numpy()) / 86400
    read = clock.lap()
    X = np.column_stack(
        [recency, np.log1p(g["frequency"].to_numpy()), np.log1p(g["monetary"].to_numpy())]
    )
    Z = StandardScaler().fit_transform(X)
    labels, k = _kmeans_loop(Z)
    clustered = clock.lap()
    ids = g.index.to_numpy()
    with transaction.atomic(), connection.cursor() as cur:
        if pg:
            cur.execute("CREATE TEMPORARY TABLE bare_labels (id bigint, label int) ON COMMIT DROP")
            with cur.cursor.copy("COPY bare_labels (id, label) FROM STDIN") as copy:
                copy.write(
                    "".join(
                        f"{p}\t{lbl}\n"
                        for p, lbl in zip(ids.tolist(), labels.tolist(), strict=True)
                    )
                )
            cur.execute(
                # The same document change as the pipeline's: scores.scores.<key> = label.
                "UPDATE segments_profile AS p SET scores = jsonb_set(p.scores, '{scores}',"
                " coalesce(p.scores->'scores', '{}'::jsonb) || jsonb_build_object('bare',"
                " b.label)) FROM bare_labels AS b WHERE p.id = b.id"
            )
        else:
            cur.executemany(
                "UPDATE segments_profile SET scores = json_set(scores, '$.scores.bare', %s)"
                " WHERE id = %s",
                [(int(lbl), int(pid)) for pid, lbl in zip(ids, labels, strict=True)],
            )
    return ids, labels, k, {"read": read, "cluster": clustered, "total": clock.lap()}


def propensity(n: int):
    from segments.engine.features import DAY, EventRows, catalogue
    from segments.engine.propensity import Target, time_split, train

    rng = np.random.default_rng(1)
    rates = rng.choice([0.004, 0.015, 0.05, 0.15], size=n, p=[0.4, 0.3, 0.2, 0.1])
    counts = rng.poisson(rates * DAYS)
    owner = np.repeat(np.arange(1, n + 1), counts)
    t0 = START.timestamp()
    events = EventRows(
        owner,
        np.full(len(owner), "purchase", object),
        t0 + rng.uniform(0, DAYS, len(owner)) * DAY,
        rng.gamma(2.0, 15.0, len(owner)),
    )
    specs = catalogue(event_types=["purchase"], windows_days=[30])
    _progress(f"propensity: {len(owner):,} purchases generated")
    started = time.perf_counter()
    split = time_split(
        events,
        specs,
        Target("purchase", 60),
        cutoff=t0 + 240 * DAY,
        validation_cutoff=t0 + 300 * DAY,
    )
    build_s = time.perf_counter() - started
    _progress(f"propensity: features built in {build_s:.1f} s")
    model, report = train(split, "gradient_boosting", importance_sample=5000, importance_repeats=2)
    started = time.perf_counter()
    model.score(split.valid)
    score_s = time.perf_counter() - started
    return {
        "profiles": n,
        "events": len(owner),
        "build": build_s,
        "fit": report["fit_seconds"],
        "score": score_s,
        "scored": len(split.y_valid),
        "auc": report["metrics"]["auc"],
        "baseline": report["baseline"]["auc"],
        "train": len(split.y_train),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Model segments benchmark.")
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per side")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--database",
        choices=["postgresql", "sqlite"],
        default="postgresql",
        help="postgresql (production's; a throwaway cluster) or sqlite (the development default)",
    )
    parser.add_argument(
        "--part",
        choices=["all", "cluster", "propensity"],
        default="all",
        help="cluster: a and b only; propensity: c only (no database)",
    )
    args = parser.parse_args()
    if not 1000 <= args.profiles <= 5_000_000:
        parser.error("--profiles must be between 1,000 and 5,000,000")
    if args.part == "propensity":
        return _propensity_only(args.profiles)
    workdir = Path(tempfile.mkdtemp(prefix="mosaic-bench-models-"))
    try:
        with contextlib.ExitStack() as stack:
            database_url = None
            if args.database == "postgresql":
                from benchmarks import _support as support

                pg_bin = support.postgres_bin()
                if pg_bin is None:
                    parser.error("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
                database_url = stack.enter_context(support.postgres_cluster(pg_bin, workdir / "pg"))
            _setup(workdir, database_url)
            return _run(args)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _progress(text: str) -> None:
    """A time-stamped progress line on stderr (the table goes to stdout)."""
    print(f"{dt.datetime.now(dt.UTC):%H:%M:%S} {text}", file=sys.stderr, flush=True)


def _propensity_only(n: int) -> int:
    prop = propensity(n)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    load = os.getloadavg()
    _print_propensity(prop)
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"peak RSS of this process {rss_gb:.2f} GB (target <= 4)")
    return 0 if rss_gb <= 4 else 1


def _print_propensity(prop) -> None:
    print(
        f"propensity (gradient boosting, purchase in 60 days), {prop['profiles']:,} profiles,"
        f" {prop['events']:,} purchases: features {prop['build']:.1f} s, fit {prop['fit']:.1f} s"
        f" on {prop['train']:,}, score {prop['score']:.2f} s for {prop['scored']:,}; AUC"
        f" {prop['auc']:.4f} vs recency {prop['baseline']:.4f} (wall seconds)"
    )


def _run(args) -> int:
    from django.db import connection
    from sklearn.metrics import adjusted_rand_score

    n = args.profiles
    t = time.perf_counter()
    truth, owner, days, amount = _generate(n)
    first_id = _insert(n, owner, days, amount)
    setup_s = time.perf_counter() - t
    n_events = len(owner)
    del owner, days, amount
    as_of = START + dt.timedelta(days=DAYS)
    # Alternating rounds (bare, pipeline, pipeline, bare, ...) in this one process, so that
    # neither side always runs on a warmer cache or in a quieter spell of the shared machine;
    # each side's best round (by CPU) counts. CPU seconds are this process's plus those of the
    # database backend serving it; wall seconds are printed beside them.
    results = {"bare": [], "pipeline": []}
    order = []
    for r in range(args.rounds):
        order += ["bare", "pipeline"] if r % 2 == 0 else ["pipeline", "bare"]
    _progress(f"filled in {setup_s:.1f} s")
    for side in order:
        results[side].append((bare if side == "bare" else pipeline)(as_of))
        _progress(f"{side}: {results[side][-1][3]}")
    best = {side: min(runs_, key=lambda x: x[3]["total"][1]) for side, runs_ in results.items()}
    ids_b, labels_b, k_b, time_b = best["bare"]
    ids_p, labels_p, k_p, time_p = best["pipeline"]
    ari_p = adjusted_rand_score(truth[ids_p - first_id], labels_p)
    ari_b = adjusted_rand_score(truth[ids_b - first_id], labels_b)
    # Both list the profiles in id order: the labellings compare row by row.
    assert np.array_equal(ids_p, ids_b), "the two computations saw different profiles"
    same = adjusted_rand_score(labels_b, labels_p)
    load = os.getloadavg()
    prop = None if args.part == "cluster" else propensity(n)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    ratio = time_p["total"][1] / time_b["total"][1]
    ratio_wall = time_p["total"][0] / time_b["total"][0]

    def row(name, t, k, ari):
        cells = [
            t["read"],
            (t["cluster"][0] - t["read"][0], t["cluster"][1] - t["read"][1]),
            (t["total"][0] - t["cluster"][0], t["total"][1] - t["cluster"][1]),
            t["total"],
        ]
        text = "".join(f"{c[1]:>10.1f}{c[0]:>8.1f}" for c in cells)
        return f"{name:<22}{text}{k:>4}{ari:>8.4f}"

    print(
        f"{connection.vendor}: profiles {n:,}, purchases {n_events:,} (set-up {setup_s:.1f} s), "
        f"best of {args.rounds} alternating round(s) per side"
    )
    print(
        f"{'':<22}{'read cpu':>10}{'wall':>8}{'clus cpu':>10}{'wall':>8}{'write cpu':>10}"
        f"{'wall':>8}{'total cpu':>10}{'wall':>8}{'k':>4}{'ARI':>8}"
    )
    print(row("pipeline", time_p, k_p, ari_p))
    print(row("bare pandas + sklearn", time_b, k_b, ari_b))
    for side in ("pipeline", "bare"):
        rounds = ", ".join(f"{r[3]['total'][1]:.1f}/{r[3]['total'][0]:.1f}" for r in results[side])
        print(f"  {side} rounds (total cpu/wall s): {rounds}")
    print(
        f"ratio pipeline/bare: CPU {ratio:.2f} (target <= 1.5), wall {ratio_wall:.2f}; "
        f"ARI vs planted groups (target >= 0.9); ARI pipeline vs bare labels {same:.4f}"
    )
    print(f"load average after the cluster rounds: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if prop is not None:
        _print_propensity(prop)
    print(f"peak RSS of this process {rss_gb:.2f} GB (target <= 4)")
    ok = ratio <= 1.5 and ari_p >= 0.9 and rss_gb <= 4
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
