"""Benchmark: model segments on synthetic profiles with planted groups and a planted propensity.

    .venv/bin/python benchmarks/bench_models.py --profiles 100000

Everything is throwaway: a SQLite database under a temporary MOSAIC_VAR_DIR, migrated first,
removed at the end. Data: `--profiles` profiles in four planted groups (lapsed: bought in the
first 120 days only; recent: only in the last 125; regulars; VIPs: higher rates and order values;
one purchase at least), about 7.8 purchases a profile over 365 days; group membership is the
truth for the adjusted Rand index.

a. Cluster pipeline, as a cluster segment computes it: features from the database in chunks
   (analysis.selectors.feature_matrix_from_db: recency, frequency, monetary), log1p + standard
   scaling, K-Means with k chosen over 2..10 (silhouette and Davies-Bouldin on a 5,000 sample;
   MiniBatchKMeans above 200,000 profiles), labels written back onto the profiles
   (analysis.model_segments.profile_model_scores_write). No stability check (the bare
   computation has none either).
b. Bare pandas + scikit-learn, in the same run, computing the same result: pandas.read_sql of
   the purchases, groupby to recency/frequency/monetary, the same scaling and the same K-Means
   loop (same estimator, same seeds, same sample), labels written back with one executemany.
c. Propensity: "purchase in the 60 days after day 240" trained on the planted rates (engine
   time split: features as of day 240 and validated as of day 300), training and scoring time
   of gradient boosting, AUC beside the recency baseline.

Prints one table; peak RSS from getrusage. Exits 1 when a target is missed: pipeline <= 1.5x
bare, adjusted Rand >= 0.9 on the planted groups, peak RSS <= 4 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
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


def _setup(workdir: Path) -> None:
    os.environ["MOSAIC_VAR_DIR"] = str(workdir / "var")
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


def _insert(n: int, owner, days, amount) -> None:
    from django.db import connection, transaction

    start_ts = START.timestamp()
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO segments_profile (key, user_key, traits, aggregates, consent, scores,"
            " first_seen, last_seen) VALUES (%s, '', '{}', '{}', '{}', '{}', %s, %s)",
            [(f"bench{i:08d}", START.isoformat(" "), START.isoformat(" ")) for i in range(n)],
        )
        cur.execute("SELECT min(id) FROM segments_profile")
        first_id = cur.fetchone()[0]
        batch = []
        for o, d, a in zip(owner.tolist(), days.tolist(), amount.tolist(), strict=True):
            at = dt.datetime.fromtimestamp(start_ts + d * 86400, tz=dt.UTC)
            batch.append(
                (os.urandom(16).hex(), first_id + o, at.strftime("%Y-%m-%d %H:%M:%S.%f"), a)
            )
            if len(batch) == 50_000:
                _events(cur, batch)
                batch = []
        _events(cur, batch)
    return first_id


def _events(cur, rows) -> None:
    if rows:
        cur.executemany(
            "INSERT INTO segments_event (event_id, profile_id, type, name, properties, value,"
            " currency, context, occurred_at, received_at) VALUES (%s, %s, 'purchase', '', '{}',"
            " %s, 'USD', '{}', %s, %s)",
            [(e, p, str(v), at, at) for e, p, at, v in rows],
        )


def _kmeans_loop(Z, seed=0, sample=5000):
    """Both sides call the engine's choose_k: the same estimator, seeds and sample."""
    from segments.engine.clustering import choose_k

    chosen = choose_k(Z, (2, 10), seed=seed, sample=sample)
    return chosen["model"].labels_, chosen["k"]


class _Clock:
    """Wall-clock and CPU seconds (all threads of this process) since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


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
    import pandas as pd
    from django.db import connection, transaction
    from sklearn.preprocessing import StandardScaler

    clock = _Clock()
    connection.ensure_connection()
    df = pd.read_sql_query(
        "SELECT profile_id, occurred_at, CAST(value AS REAL) AS value FROM segments_event"
        " WHERE type = 'purchase' AND occurred_at <= %s"
        % ("'" + as_of.strftime("%Y-%m-%d %H:%M:%S") + "'"),
        connection.connection,
    )
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], utc=True)
    g = df.groupby("profile_id").agg(
        last=("occurred_at", "max"), frequency=("value", "size"), monetary=("value", "sum")
    )
    g["recency"] = (pd.Timestamp(as_of) - g["last"]).dt.total_seconds() / 86400
    read = clock.lap()
    X = np.column_stack(
        [
            g["recency"].to_numpy(),
            np.log1p(g["frequency"].to_numpy()),
            np.log1p(g["monetary"].to_numpy()),
        ]
    )
    Z = StandardScaler().fit_transform(X)
    labels, k = _kmeans_loop(Z)
    clustered = clock.lap()
    path = '$.scores."bare"'
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(
            "UPDATE segments_profile SET scores = json_set(scores, %s, %s) WHERE id = %s",
            [(path, int(lbl), int(pid)) for pid, lbl in zip(g.index, labels, strict=True)],
        )
    return g.index.to_numpy(), labels, k, {"read": read, "cluster": clustered, "total": clock.lap()}


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
    started = time.perf_counter()
    split = time_split(
        events,
        specs,
        Target("purchase", 60),
        cutoff=t0 + 240 * DAY,
        validation_cutoff=t0 + 300 * DAY,
    )
    build_s = time.perf_counter() - started
    model, report = train(split, "gradient_boosting", importance_sample=5000, importance_repeats=2)
    started = time.perf_counter()
    model.score(split.valid)
    score_s = time.perf_counter() - started
    return {
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
    args = parser.parse_args()
    if not 1000 <= args.profiles <= 5_000_000:
        parser.error("--profiles must be between 1,000 and 5,000,000")
    from sklearn.metrics import adjusted_rand_score

    workdir = Path(tempfile.mkdtemp(prefix="mosaic-bench-models-"))
    try:
        _setup(workdir)
        n = args.profiles
        t = time.perf_counter()
        truth, owner, days, amount = _generate(n)
        first_id = _insert(n, owner, days, amount)
        setup_s = time.perf_counter() - t
        as_of = START + dt.timedelta(days=DAYS)
        # Alternating rounds (bare, pipeline, pipeline, bare, ...) so that neither side always
        # runs on a warmer cache or in a quieter spell of the shared machine; each side's best
        # round counts. CPU seconds are judged (wall seconds are printed beside them): on a
        # machine shared with other work, wall time mostly measures the neighbours.
        results = {"bare": [], "pipeline": []}
        order = []
        for r in range(args.rounds):
            order += ["bare", "pipeline"] if r % 2 == 0 else ["pipeline", "bare"]
        for side in order:
            results[side].append((bare if side == "bare" else pipeline)(as_of))
        best = {side: min(runs_, key=lambda x: x[3]["total"][1]) for side, runs_ in results.items()}
        ids_b, labels_b, k_b, time_b = best["bare"]
        ids_p, labels_p, k_p, time_p = best["pipeline"]
        truth_p = truth[ids_p - first_id]
        truth_b = truth[ids_b - first_id]
        ari_p = adjusted_rand_score(truth_p, labels_p)
        ari_b = adjusted_rand_score(truth_b, labels_b)
        # Both list the profiles in id order: the labellings compare row by row.
        assert np.array_equal(ids_p, ids_b), "the two computations saw different profiles"
        same = adjusted_rand_score(labels_b, labels_p)
        prop = propensity(n)
        rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
        ratio = time_p["total"][1] / time_b["total"][1]
        ratio_wall = time_p["total"][0] / time_b["total"][0]

        def row(name, t, k, ari):
            cells = [
                t["read"],
                (t["cluster"][0] - t["read"][0], t["cluster"][1] - t["read"][1]),
                t["total"],
            ]
            text = "".join(f"{c[1]:>10.1f}{c[0]:>8.1f}" for c in cells)
            return f"{name:<31}{text}{k:>4}{ari:>8.4f}"

        print(
            f"profiles {n:,}, purchases {len(owner):,} (set-up {setup_s:.1f} s), "
            f"best of {args.rounds} alternating round(s) per side"
        )
        print(
            f"{'':<31}{'read cpu':>10}{'wall':>8}{'clus cpu':>10}{'wall':>8}{'total cpu':>10}"
            f"{'wall':>8}{'k':>4}{'ARI':>8}"
        )
        print(row("pipeline (DB chunks + engine)", time_p, k_p, ari_p))
        print(row("bare pandas + scikit-learn", time_b, k_b, ari_b))
        print(
            f"ratio pipeline/bare: CPU {ratio:.2f} (target <= 1.5), wall {ratio_wall:.2f}; "
            f"ARI vs planted groups (target >= 0.9); ARI pipeline vs bare labels {same:.4f}"
        )
        print(
            f"propensity (gradient boosting, purchase in 60 days): features {prop['build']:.1f} s,"
            f" fit {prop['fit']:.1f} s on {prop['train']:,}, score {prop['score']:.2f} s for "
            f"{prop['scored']:,}; AUC {prop['auc']:.4f} vs recency {prop['baseline']:.4f}"
        )
        print(f"peak RSS {rss_gb:.2f} GB (target <= 4)")
        ok = ratio <= 1.5 and ari_p >= 0.9 and rss_gb <= 4
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
