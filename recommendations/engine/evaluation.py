"""The offline protocol: time split, validation-only tuning, test evaluation of every model.

1. Test split: per user, the last 20 % of interactions by time (users with >= 5 interactions).
2. Validation split: the same rule applied to the *training part only*; hyperparameters of ALS
   (confidence scaling and alpha, factors, regularization, iterations) and of item-item
   (similarity, neighbours) are chosen by NDCG@k on it, by a small coordinate search that starts
   from defaults and stops at a time budget. The test part is never looked at while tuning.
3. Every model is refitted on the whole training part with its chosen parameters and evaluated on
   the test part: relevant items are the user's held-out items (minus those already in the user's
   training part when seen items are excluded); users with none are not evaluated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from .matrix import to_csr
from .metrics import evaluate_lists
from .models import ALSModel, ALSParams, ItemItemModel, ItemItemParams, PopularityModel
from .split import time_split

# Coordinate search, one parameter at a time from the defaults, keeping the best so far.
# Regularization first over a wide log grid (its right scale depends on the data's size and
# confidence magnitudes), then the number of factors, then regularization again around the
# best, then the confidence transform, alpha and iterations. Values are callables of the best.
ALS_SEARCH: tuple[tuple[str, Callable[[ALSParams], tuple]], ...] = (
    ("regularization", lambda _b: (0.01, 0.1, 1.0, 10.0, 100.0)),
    ("factors", lambda _b: (8, 16, 32, 64, 128)),
    ("regularization", lambda b: (float(f"{b.regularization / 3:.3g}"), b.regularization * 3)),
    ("scaling", lambda _b: ("log", "linear", "bm25")),
    ("alpha", lambda _b: (1.0, 3.0, 10.0, 30.0)),
    ("iterations", lambda _b: (10, 15, 30)),
)
MIN_GAIN = 0.02


def _costlier(a: ALSParams, b: ALSParams) -> bool:
    return a.factors * a.iterations > b.factors * b.iterations


ITEM_ITEM_SEARCH: tuple[ItemItemParams, ...] = (
    ItemItemParams("bm25", 100),
    ItemItemParams("cosine", 100),
    ItemItemParams("bm25", 20),
    ItemItemParams("cosine", 20),
)


@dataclass
class Dataset:
    """Coded interactions: integer user and item codes, weights, Unix-second timestamps."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray
    n_users: int
    n_items: int


@dataclass
class Heldout:
    """Training matrix plus, per evaluated user, the relevant held-out item indices."""

    train: sp.csr_matrix
    users: np.ndarray
    relevant: list[np.ndarray]
    heldout_rows: int


def heldout_split(
    data: Dataset, rows: np.ndarray, *, share: float, min_interactions: int, exclude_seen: bool
) -> Heldout:
    """Split the given rows by time per user; relevance sets for users with a held-out part."""
    u, i, w, t = data.users[rows], data.items[rows], data.weights[rows], data.timestamps[rows]
    split = time_split(u, t, share=share, min_interactions=min_interactions)
    train = to_csr(u[split.train], i[split.train], w[split.train], (data.n_users, data.n_items))
    tu, ti = u[split.test], i[split.test]
    order = np.lexsort((ti, tu))
    tu, ti = tu[order], ti[order]
    starts = np.flatnonzero(np.r_[True, tu[1:] != tu[:-1]]) if len(tu) else np.empty(0, int)
    ends = np.r_[starts[1:], len(tu)] if len(tu) else np.empty(0, int)
    users, relevant = [], []
    for s, e in zip(starts, ends, strict=True):
        user = int(tu[s])
        items = np.unique(ti[s:e])
        if exclude_seen:
            seen = train.indices[train.indptr[user] : train.indptr[user + 1]]
            items = items[~np.isin(items, seen)]
        if len(items):
            users.append(user)
            relevant.append(items)
    return Heldout(
        train=train,
        users=np.asarray(users, dtype=np.int64),
        relevant=relevant,
        heldout_rows=int(split.test.sum()),
    )


def score_model(model, held: Heldout, k: int, n_catalog: int, exclude_seen: bool) -> dict:
    recs = model.recommend(held.users, held.train[held.users], k, exclude_seen=exclude_seen)
    return evaluate_lists(recs, held.relevant, k, n_catalog)


def _subsample(held: Heldout, max_users: int, seed: int = 0) -> Heldout:
    if len(held.users) <= max_users:
        return held
    pick = np.sort(np.random.default_rng(seed).choice(len(held.users), max_users, replace=False))
    return replace(held, users=held.users[pick], relevant=[held.relevant[j] for j in pick])


@dataclass
class TuningResult:
    als: ALSParams
    item_item: ItemItemParams
    trials: list[dict] = field(default_factory=list)
    stopped_by_budget: bool = False


def tune(
    val: Heldout,
    k: int,
    n_catalog: int,
    *,
    exclude_seen: bool = True,
    budget_seconds: float = 240.0,
    threads: int | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> TuningResult:
    """Coordinate search on the validation split (NDCG@k), defaults first, within a time budget."""
    started = time.monotonic()
    trials: list[dict] = []
    result = TuningResult(als=ALSParams(), item_item=ITEM_ITEM_SEARCH[0], trials=trials)
    if not len(val.users) or val.train.nnz == 0:
        return result
    cache: dict[ALSParams, float] = {}

    def als_score(params: ALSParams) -> float:
        if params not in cache:
            t0 = time.monotonic()
            metrics = score_model(
                ALSModel(params, threads=threads).fit(val.train), val, k, n_catalog, exclude_seen
            )
            cache[params] = metrics["ndcg"]
            trials.append(
                {
                    "model": "als",
                    **params.as_dict(),
                    "val_ndcg": metrics["ndcg"],
                    "seconds": round(time.monotonic() - t0, 2),
                }
            )
            log(f"  als {params.as_dict()} validation ndcg@{k}={metrics['ndcg']:.4f}")
        return cache[params]

    best = ALSParams()
    best_score = als_score(best)
    for name, values in ALS_SEARCH:
        for value in values(best):
            if time.monotonic() - started > budget_seconds:
                result.stopped_by_budget = True
                break
            candidate = replace(best, **{name: value})
            score = als_score(candidate)
            # A costlier model (more factors or iterations) must earn its cost: it replaces the
            # best only if it scores MIN_GAIN (relative) higher; validation noise alone never
            # buys a slower training.
            needed = best_score * (1 + MIN_GAIN) if _costlier(candidate, best) else best_score
            if score > needed:
                best, best_score = candidate, score
    result.als = best
    best_ii, best_ii_score = ITEM_ITEM_SEARCH[0], -1.0
    for params in ITEM_ITEM_SEARCH:
        if best_ii_score >= 0 and time.monotonic() - started > budget_seconds:
            result.stopped_by_budget = True
            break
        metrics = score_model(
            ItemItemModel(params, threads=threads).fit(val.train), val, k, n_catalog, exclude_seen
        )
        trials.append(
            {
                "model": "item_item",
                "similarity": params.similarity,
                "neighbours": params.neighbours,
                "val_ndcg": metrics["ndcg"],
            }
        )
        log(f"  item-item {params} validation ndcg@{k}={metrics['ndcg']:.4f}")
        if metrics["ndcg"] > best_ii_score:
            best_ii, best_ii_score = params, metrics["ndcg"]
    result.item_item = best_ii
    return result


@dataclass
class EvaluationReport:
    protocol: dict
    results: dict[str, dict]
    tuning: TuningResult


def run_protocol(
    data: Dataset,
    *,
    k: int = 10,
    share: float = 0.2,
    min_interactions: int = 5,
    exclude_seen: bool = True,
    budget_seconds: float = 240.0,
    max_validation_users: int = 10_000,
    threads: int | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> EvaluationReport:
    """Split, tune on validation, refit on training, evaluate ALS, item-item and popularity."""
    all_rows = np.arange(len(data.users))
    test = heldout_split(
        data, all_rows, share=share, min_interactions=min_interactions, exclude_seen=exclude_seen
    )
    train_rows = all_rows[_train_mask(data, share, min_interactions)]
    val = heldout_split(
        data, train_rows, share=share, min_interactions=min_interactions, exclude_seen=exclude_seen
    )
    val = _subsample(val, max_validation_users)
    protocol = {
        "interactions": len(data.users),
        "users": int(data.n_users),
        "items": int(data.n_items),
        "k": k,
        "test_share": share,
        "min_interactions": min_interactions,
        "exclude_seen": exclude_seen,
        "test_interactions": test.heldout_rows,
        "evaluated_users": len(test.users),
        "validation_users": len(val.users),
    }
    if not len(test.users):
        # nothing to evaluate: do not spend the tuning budget
        return EvaluationReport(
            protocol=protocol,
            results={},
            tuning=TuningResult(als=ALSParams(), item_item=ITEM_ITEM_SEARCH[0]),
        )
    log(f"tuning on the validation split ({len(val.users)} users) ...")
    t0 = time.monotonic()
    tuning = tune(
        val,
        k,
        data.n_items,
        exclude_seen=exclude_seen,
        budget_seconds=budget_seconds,
        threads=threads,
        log=log,
    )
    protocol["tuning_seconds"] = round(time.monotonic() - t0, 2)
    protocol["als_params"] = tuning.als.as_dict()
    protocol["item_item_params"] = {
        "similarity": tuning.item_item.similarity,
        "neighbours": tuning.item_item.neighbours,
    }
    protocol["tuning_stopped_by_budget"] = tuning.stopped_by_budget
    results: dict[str, dict] = {}
    models = {
        "als": ALSModel(tuning.als, threads=threads),
        "item_item": ItemItemModel(tuning.item_item, threads=threads),
        "popularity": PopularityModel(),
    }
    for name, model in models.items():
        t1 = time.monotonic()
        model.fit(test.train)
        fit_seconds = time.monotonic() - t1
        metrics = score_model(model, test, k, data.n_items, exclude_seen)
        metrics["fit_seconds"] = round(fit_seconds, 2)
        results[name] = metrics
    return EvaluationReport(protocol=protocol, results=results, tuning=tuning)


def _train_mask(data: Dataset, share: float, min_interactions: int) -> np.ndarray:
    return time_split(
        data.users, data.timestamps, share=share, min_interactions=min_interactions
    ).train
