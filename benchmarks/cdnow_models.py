"""Real-data report: propensity models and RFM clusters on the CDNOW sample (issue #16).

    .venv/bin/python benchmarks/cdnow_models.py [--data PATH] [--cutoff 1997-09-30]
        [--window DAYS | to the end of the data] [--validation-cutoff DATE] [--clusters]

Without --validation-cutoff: features as of --cutoff, labels from the window after it, 30 % of
the customers held out (stratified) and never trained on. With it: trained as of --cutoff and
validated as of the later cutoff (segments.engine.propensity.time_split). Prints one line per
model beside the recency-only baseline fitted on the same split; --clusters adds K-Means on
(purchase recency, frequency, monetary) with silhouette, Davies-Bouldin and inertia per k.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segments.engine.cdnow import day, read_cdnow
from segments.engine.clustering import cluster
from segments.engine.features import (
    DAY,
    build_feature_matrix,
    catalogue,
    profiles_seen_by,
)
from segments.engine.propensity import (
    MODELS,
    Target,
    holdout_split,
    time_split,
    train,
)

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--cutoff", default="1997-09-30")
    parser.add_argument("--window", type=float, help="days (default: to the end of the data)")
    parser.add_argument("--validation-cutoff")
    parser.add_argument("--clusters", action="store_true")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"skipped: {args.data} not found", file=sys.stderr)
        return 0
    events = read_cdnow(args.data)
    cutoff = day(args.cutoff)
    end = float(events.occurred_at.max())
    window = args.window if args.window else (end - cutoff) / DAY
    specs = catalogue(event_types=["purchase"], windows_days=[30, 90])
    target = Target("purchase", window)
    if args.validation_cutoff:
        split = time_split(
            events, specs, target, cutoff=cutoff, validation_cutoff=day(args.validation_cutoff)
        )
        how = f"trained as of {args.cutoff}, validated as of {args.validation_cutoff}"
    else:
        split = holdout_split(events, specs, target, cutoff=cutoff, holdout=0.3, seed=0)
        how = f"as of {args.cutoff}, 30 % of customers held out"
    print(
        f"CDNOW: {len(events)} purchases; target: a purchase in the {window:.0f} days after "
        f"the cutoff; {how}; train {len(split.y_train)} (positive rate "
        f"{split.y_train.mean():.3f}), validation {len(split.y_valid)} (positive rate "
        f"{split.y_valid.mean():.3f})"
    )
    print(
        f"{'model':<22}{'AUC':>7}{'PR-AUC':>8}{'Brier':>8}{'base AUC':>10}  beats  top feature"
        f"  fit s"
    )
    for name in MODELS:
        started = time.perf_counter()
        _, rep = train(split, name)
        m, b = rep["metrics"], rep["baseline"]
        print(
            f"{name:<22}{m['auc']:>7.4f}{m['pr_auc']:>8.4f}{m['brier']:>8.4f}{b['auc']:>10.4f}"
            f"  {'yes' if rep['beats_baseline'] else 'no ':<5}  "
            f"{rep['importances'][0]['feature']:<11}  {time.perf_counter() - started:5.1f}"
        )
    if args.clusters:
        names = ["purchase_recency_days", "frequency", "monetary"]
        ids = profiles_seen_by(events, cutoff)
        X = build_feature_matrix(events, ids, cutoff, specs).numeric_subset(names)
        _, _, rep = cluster(X, names, k_range=(2, 8), seed=0)
        print(
            f"K-Means on {', '.join(names)} ({len(X)} customers; log1p on "
            f"{', '.join(rep['log_scaled'])}; silhouette on a sample of "
            f"{rep['silhouette_sample']}):"
        )
        print(f"{'k':>3}{'silhouette':>12}{'Davies-Bouldin':>16}{'inertia':>12}")
        for r in rep["per_k"]:
            print(
                f"{r['k']:>3}{r['silhouette']:>12.4f}{r['davies_bouldin']:>16.4f}"
                f"{r['inertia']:>12.1f}"
            )
        st = rep["stability"]
        print(
            f"chosen k = {rep['k']}; adjusted Rand across seeds {st['seeds']}: min {st['min']:.4f}"
        )
        for c in rep["clusters"]:
            cen = c["centroid"]
            print(
                f"  cluster {c['label']}: {c['size']:>6} customers, recency "
                f"{cen['purchase_recency_days']:.0f} d, frequency {cen['frequency']:.2f}, "
                f"monetary {cen['monetary']:.2f}: {c['description']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
