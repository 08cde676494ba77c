"""Benchmark: recommendation quality on planted tastes, training time and top-N time.

Run ``nice .venv/bin/python benchmarks/bench_recs.py`` (full sizes) or with smaller sizes while
developing (``--train-interactions 100000 --visitors 10000``). Prints one table and exits 1 when
a target is missed.

a. Quality: the synthetic generator (recommendations.engine.synthetic, planted taste groups) with
   ``--quality-interactions`` interactions, the evaluation protocol of ``evaluate_recommender``
   (per-user time split, tuning on a validation split of the training part only); target: ALS
   precision@10 >= 2x popularity's.
b. Training: ``--train-interactions`` generated events (view/cart/purchase) among
   ``--visitors`` visitors and ``--items`` items -> CSR matrix with event weights and a 30-day
   half-life decay (InteractionBuilder, chunks of 100,000) -> ALS fit; target <= 60 s for the
   matrix build plus the fit, at the largest factors of the tuning grid (128) and 15 iterations.
c. Top-N: the 10 best items for every one of the ``--visitors`` visitors, their own items
   excluded; target <= 60 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from recommendations.engine.evaluation import Dataset, run_protocol  # noqa: E402
from recommendations.engine.matrix import InteractionBuilder  # noqa: E402
from recommendations.engine.models import ALSModel, ALSParams  # noqa: E402
from recommendations.engine.synthetic import generate  # noqa: E402

TARGET_RATIO = 2.0
TARGET_TRAIN_S = 60.0
TARGET_TOPN_S = 60.0
CHUNK = 100_000


def quality(n_interactions: int, threads: int) -> dict:
    n_users = max(100, n_interactions // 20)
    data = generate(n_interactions=n_interactions, n_users=n_users, n_items=2_000, seed=7)
    ds = Dataset(
        data.users,
        data.items,
        np.ones(len(data.users)),
        data.timestamps,
        data.n_users,
        data.n_items,
    )
    t0 = time.perf_counter()
    report = run_protocol(ds, k=10, threads=threads, budget_seconds=120)
    return {"report": report, "seconds": time.perf_counter() - t0}


def training(n_interactions: int, n_visitors: int, n_items: int, threads: int) -> dict:
    data = generate(
        n_interactions=n_interactions,
        n_users=n_visitors,
        n_items=n_items,
        min_per_user=min(3, n_interactions // n_visitors),
        seed=3,
    )
    users = [f"visitor-{u}" for u in data.users]
    items = [f"sku-{i}" for i in data.items]
    t0 = time.perf_counter()
    builder = InteractionBuilder(
        half_life=30 * 86400.0, reference_time=float(data.timestamps.max())
    )
    for s in range(0, n_interactions, CHUNK):
        builder.add(
            users[s : s + CHUNK],
            items[s : s + CHUNK],
            events=data.events[s : s + CHUNK],
            timestamps=data.timestamps[s : s + CHUNK],
        )
    built = builder.build()
    t_matrix = time.perf_counter() - t0
    params = ALSParams(factors=128, regularization=1.0, iterations=15, alpha=10.0, scaling="log")
    t1 = time.perf_counter()
    model = ALSModel(params, threads=threads).fit(built.matrix)
    t_fit = time.perf_counter() - t1
    t2 = time.perf_counter()
    recs = model.recommend(np.arange(built.matrix.shape[0]), built.matrix, 10)
    t_topn = time.perf_counter() - t2
    return {
        "matrix_s": t_matrix,
        "fit_s": t_fit,
        "topn_s": t_topn,
        "shape": built.matrix.shape,
        "nnz": built.matrix.nnz,
        "lists": len(recs),
        "full": int((recs >= 0).all(axis=1).sum()),
        "params": params.as_dict(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality-interactions", type=int, default=200_000)
    parser.add_argument("--train-interactions", type=int, default=1_000_000)
    parser.add_argument("--visitors", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    failures = []

    q = quality(args.quality_interactions, args.threads)
    res, proto = q["report"].results, q["report"].protocol
    print(
        f"a. quality: {proto['interactions']} interactions, {proto['users']} users, "
        f"{proto['items']} items, {proto['evaluated_users']} evaluated users, "
        f"protocol {q['seconds']:.1f} s (tuning {proto['tuning_seconds']} s)"
    )
    print(f"   ALS params {proto['als_params']}; item-item {proto['item_item_params']}")
    print(f"   {'model':<12}{'P@10':>8}{'R@10':>8}{'MAP@10':>8}{'NDCG@10':>9}{'coverage':>10}")
    for name, m in res.items():
        print(
            f"   {name:<12}{m['precision']:>8.4f}{m['recall']:>8.4f}{m['map']:>8.4f}"
            f"{m['ndcg']:>9.4f}{m['coverage']:>10.4f}"
        )
    ratio = res["als"]["precision"] / max(res["popularity"]["precision"], 1e-12)
    ok = ratio >= TARGET_RATIO
    print(
        f"   ALS P@10 / popularity P@10 = {ratio:.2f} (target >= {TARGET_RATIO}) "
        f"{'ok' if ok else 'MISSED'}"
    )
    if not ok:
        failures.append("quality")

    t = training(args.train_interactions, args.visitors, args.items, args.threads)
    train_s = t["matrix_s"] + t["fit_s"]
    print(
        f"b. training: {args.train_interactions} interactions -> {t['shape'][0]} x "
        f"{t['shape'][1]} matrix, {t['nnz']} non-zeros; build {t['matrix_s']:.1f} s + ALS fit "
        f"{t['fit_s']:.1f} s = {train_s:.1f} s (target <= {TARGET_TRAIN_S:.0f} s) "
        f"{'ok' if train_s <= TARGET_TRAIN_S else 'MISSED'}; ALS {t['params']}, "
        f"{args.threads} threads"
    )
    if train_s > TARGET_TRAIN_S:
        failures.append("training")
    print(
        f"c. top-N: 10 items for {t['lists']} visitors ({t['full']} full lists) in "
        f"{t['topn_s']:.1f} s (target <= {TARGET_TOPN_S:.0f} s) "
        f"{'ok' if t['topn_s'] <= TARGET_TOPN_S else 'MISSED'}"
    )
    if t["topn_s"] > TARGET_TOPN_S:
        failures.append("top-N")
    print("targets missed: " + ", ".join(failures) if failures else "all targets met")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
