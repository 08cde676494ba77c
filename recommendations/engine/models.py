"""Recommendation models over a user x item CSR matrix: popularity, item-item, ALS, category.

Every model answers ``recommend(users, history, n)`` with an (len(users), n) array of item
indices, best first, -1 padding a short list; ``history`` holds the users' rows of the matrix
whose non-zero items are excluded (pass ``exclude_seen=False`` to keep them). ``similar_items``
answers "similar items" for one item.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

# Rows of users scored at once: bounds the dense (batch x items) score block.
MAX_SCORE_CELLS = 8_000_000


def default_threads() -> int:
    """Worker threads for implicit: ``MOSAIC_RECS_THREADS`` or the number of CPUs."""
    raw = os.environ.get("MOSAIC_RECS_THREADS", "")
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return max(1, os.cpu_count() or 1)


@contextmanager
def single_threaded_blas():
    """implicit parallelises itself; a multi-threaded BLAS underneath only oversubscribes."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _batch_size(n_items: int) -> int:
    return max(1, MAX_SCORE_CELLS // max(n_items, 1))


def top_n(scores: np.ndarray, n: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Indices of the n best scores per row, best first; excluded cells and -inf give -1."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    if scores.ndim == 1:
        scores = scores[None, :]
    b, m = scores.shape
    if exclude is not None and exclude.nnz:
        coo = exclude.tocoo()
        scores[coo.row, coo.col] = -np.inf
    n_eff = min(n, m)
    out = np.full((b, n), -1, dtype=np.int64)
    if n_eff == 0:
        return out
    part = np.argpartition(-scores, n_eff - 1, axis=1)[:, :n_eff]
    part_scores = np.take_along_axis(scores, part, axis=1)
    # ties broken by item index so that results are deterministic
    order = np.lexsort((part, -part_scores), axis=1)
    best = np.take_along_axis(part, order, axis=1)
    best_scores = np.take_along_axis(part_scores, order, axis=1)
    best[~np.isfinite(best_scores)] = -1
    out[:, :n_eff] = best
    return out


def _history_rows(history: sp.csr_matrix | None, exclude_seen: bool) -> sp.csr_matrix | None:
    if history is None or not exclude_seen:
        return None
    return sp.csr_matrix(history)


class PopularityModel:
    """Most interacted-with items: globally, per item category, or per user group.

    Popularity is the number of distinct users who interacted with an item (robust to one user's
    huge counts), ties broken by the summed weight.
    """

    name = "popularity"

    def fit(self, matrix: sp.csr_matrix, *, item_categories=None, user_groups=None):
        matrix = sp.csr_matrix(matrix)
        users_per_item = np.asarray((matrix > 0).sum(axis=0)).ravel().astype(np.float64)
        weight = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        total = weight.sum() or 1.0
        self.scores = users_per_item + weight / (total + 1.0)
        self.n_items = matrix.shape[1]
        self.ranking = np.lexsort((np.arange(self.n_items), -self.scores))
        self.by_category: dict = {}
        if item_categories is not None:
            cats = np.asarray(item_categories)
            for cat in np.unique(cats):
                members = self.ranking[cats[self.ranking] == cat]
                self.by_category[cat.item() if hasattr(cat, "item") else cat] = members
        self.by_group: dict = {}
        if user_groups is not None:
            groups = np.asarray(user_groups)
            binary = (matrix > 0).astype(np.float64)
            for group in np.unique(groups):
                rows = np.flatnonzero(groups == group)
                counts = np.asarray(binary[rows].sum(axis=0)).ravel()
                key = group.item() if hasattr(group, "item") else group
                self.by_group[key] = np.lexsort((np.arange(self.n_items), -counts))[
                    : int((counts > 0).sum())
                ]
        return self

    def top(self, n: int, *, category=None, group=None) -> np.ndarray:
        """The n most popular items (within a category or a user group when given)."""
        if category is not None:
            return self.by_category.get(category, np.empty(0, dtype=np.int64))[:n]
        if group is not None:
            return self.by_group.get(group, np.empty(0, dtype=np.int64))[:n]
        return self.ranking[:n]

    def recommend(self, users, history=None, n=10, *, exclude_seen=True) -> np.ndarray:
        users = np.asarray(users)
        hist = _history_rows(history, exclude_seen)
        if hist is None:
            return np.tile(self._padded(n), (len(users), 1))
        # only the first n + (longest history) items of the ranking can be needed
        width = min(self.n_items, n + int(np.diff(hist.indptr).max(initial=0)))
        head = self.ranking[:width]
        out = np.full((len(users), n), -1, dtype=np.int64)
        for i in range(len(users)):
            seen = hist.indices[hist.indptr[i] : hist.indptr[i + 1]]
            keep = head[~np.isin(head, seen)][:n]
            out[i, : len(keep)] = keep
        return out

    def _padded(self, n: int) -> np.ndarray:
        out = np.full(n, -1, dtype=np.int64)
        head = self.ranking[:n]
        out[: len(head)] = head
        return out

    def similar_items(self, item: int, n: int = 10) -> np.ndarray:
        head = self.ranking[: n + 1]
        return head[head != item][:n]


def scale_confidence(matrix: sp.csr_matrix, scaling: str) -> sp.csr_matrix:
    """Confidence transform before ALS: ``linear`` (as is), ``log`` (log1p) or ``bm25``."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    if scaling == "linear":
        return matrix
    if scaling == "log":
        out = matrix.copy()
        out.data = np.log1p(out.data).astype(np.float32)
        return out
    if scaling == "bm25":
        from implicit.nearest_neighbours import bm25_weight

        return sp.csr_matrix(bm25_weight(matrix, K1=100, B=0.8), dtype=np.float32)
    raise ValueError(f"unknown confidence scaling {scaling!r}")


def popularity_by_groups(
    matrix: sp.csr_matrix,
    groups: dict,
    *,
    n: int,
    min_users: int,
    min_item_users: int = 2,
    max_groups: int,
) -> dict:
    """Per group of users (e.g. a segment; a user may be in several): the group's n most popular
    items, as (interacting members, item indices best first).

    Popularity inside a group is the number of its members who interacted with the item (ties
    by item index, so results are deterministic). Bounded and not personal: only groups with at
    least ``min_users`` members who interacted with something, at most ``max_groups`` of them
    (the most members first), only items at least ``min_item_users`` members interacted with
    (a list never shows what one member alone did), at most n items per group.
    ``groups`` maps a key to the row indices of its members in ``matrix``.
    """
    binary = sp.csr_matrix(matrix, copy=True)
    binary.data = (binary.data > 0).astype(np.float64)
    binary.eliminate_zeros()
    active = np.diff(binary.indptr) > 0
    sized = []
    for key, rows in groups.items():
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        rows = rows[(rows >= 0) & (rows < binary.shape[0])]
        rows = rows[active[rows]]
        if len(rows) >= max(min_users, 1):
            sized.append((-len(rows), str(key), key, rows))
    sized.sort(key=lambda t: (t[0], t[1]))
    out: dict = {}
    order = np.arange(binary.shape[1])
    for minus_size, _name, key, rows in sized[: max(max_groups, 0)]:
        counts = np.asarray(binary[rows].sum(axis=0)).ravel()
        ranking = np.lexsort((order, -counts))
        keep = ranking[counts[ranking] >= max(min_item_users, 1)][:n]
        if len(keep):
            out[key] = (-minus_size, keep)
    return out


@dataclass(frozen=True)
class ALSParams:
    """Hyperparameters of implicit-feedback ALS (Hu, Koren & Volinsky 2008)."""

    factors: int = 32
    regularization: float = 1.0
    iterations: int = 15
    alpha: float = 10.0
    scaling: str = "log"

    def as_dict(self) -> dict:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "alpha": self.alpha,
            "scaling": self.scaling,
        }


class ALSModel:
    """implicit's CPU ALS with a confidence transform; single-threaded BLAS underneath."""

    name = "als"

    def __init__(self, params: ALSParams | None = None, *, threads: int | None = None, seed=42):
        self.params = params or ALSParams()
        self.threads = threads or default_threads()
        self.seed = seed

    def fit(self, matrix: sp.csr_matrix):
        from implicit.cpu.als import AlternatingLeastSquares

        p = self.params
        # implicit checks the BLAS thread pool when the model is built, so build it inside
        with single_threaded_blas():
            self.model = AlternatingLeastSquares(
                factors=p.factors,
                regularization=p.regularization,
                iterations=p.iterations,
                alpha=p.alpha,
                num_threads=self.threads,
                random_state=self.seed,
            )
            self.model.fit(scale_confidence(matrix, p.scaling), show_progress=False)
        self.n_items = matrix.shape[1]
        return self

    def recommend(self, users, history, n=10, *, exclude_seen=True) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        history = sp.csr_matrix(history, dtype=np.float32)
        out = np.full((len(users), n), -1, dtype=np.int64)
        n_eff = min(n, self.n_items)
        if n_eff == 0 or len(users) == 0:
            return out
        # implicit's batched top-k (multi-threaded, in C++): a third faster than numpy's
        # argpartition here, same lists; in slices so that memory stays bounded
        batch = 10_000
        with single_threaded_blas():
            for start in range(0, len(users), batch):
                rows = users[start : start + batch]
                ids, scores = self.model.recommend(
                    rows,
                    history[start : start + batch],
                    N=n_eff,
                    filter_already_liked_items=exclude_seen,
                )
                ids = np.atleast_2d(ids).astype(np.int64)
                scores = np.atleast_2d(scores)
                # implicit marks filtered items with -FLT_MAX, not -inf
                ids[~np.isfinite(scores) | (scores <= np.finfo(np.float32).min)] = -1
                out[start : start + len(rows), :n_eff] = ids
        return out

    def recommend_from_history(self, history_row: sp.csr_matrix, n=10, *, exclude_seen=True):
        """Top-n for a visitor not (or differently) in the trained matrix: recalculate_user."""
        row = scale_confidence(sp.csr_matrix(history_row), self.params.scaling)
        with single_threaded_blas():
            factors = self.model.recalculate_user(0, row)
        scores = np.asarray(factors) @ self.model.item_factors.T
        return top_n(scores, n, sp.csr_matrix(history_row) if exclude_seen else None)[0]

    @classmethod
    def from_item_factors(
        cls, params: ALSParams, item_factors: np.ndarray, *, threads: int | None = None
    ) -> ALSModel:
        """A trained model's item side, restored (enough to fold in new visitors)."""
        from implicit.cpu.als import AlternatingLeastSquares

        self = cls(params, threads=threads)
        with single_threaded_blas():
            self.model = AlternatingLeastSquares(
                factors=item_factors.shape[1],
                regularization=params.regularization,
                iterations=params.iterations,
                alpha=params.alpha,
                num_threads=self.threads,
            )
        # a writable copy: implicit hands it to Cython as a writable buffer
        self.model.item_factors = np.array(item_factors, dtype=np.float32, order="C", copy=True)
        self.n_items = item_factors.shape[0]
        return self

    def recommend_histories(
        self, histories: sp.csr_matrix, n: int = 10, *, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-n for visitors given only their histories (rows): their factors are solved
        against the fixed item factors (implicit's recalculate_user, in one batch)."""
        rows = scale_confidence(sp.csr_matrix(histories), self.params.scaling)
        out = np.full((rows.shape[0], n), -1, dtype=np.int64)
        if rows.shape[0] == 0:
            return out
        with single_threaded_blas():
            factors = self.model.recalculate_user(np.arange(rows.shape[0]), rows)
        factors = np.atleast_2d(np.asarray(factors))
        batch = _batch_size(self.n_items)
        for start in range(0, rows.shape[0], batch):
            scores = factors[start : start + batch] @ self.model.item_factors.T
            ex = exclude[start : start + batch] if exclude is not None else None
            out[start : start + scores.shape[0]] = top_n(scores, n, ex)
        return out

    def similar_items(self, item: int, n: int = 10) -> np.ndarray:
        ids, _scores = self.model.similar_items(int(item), N=n + 1)
        return np.asarray([i for i in ids if i != item][:n], dtype=np.int64)


@dataclass(frozen=True)
class ItemItemParams:
    """Item-item neighbourhood: ``cosine`` or ``bm25`` weighted co-occurrence, K neighbours."""

    similarity: str = "bm25"
    neighbours: int = 100


class ItemItemModel:
    """Co-occurrence item-item similarity (implicit's nearest_neighbours), popularity-filled."""

    name = "item_item"

    def __init__(self, params: ItemItemParams | None = None, *, threads: int | None = None):
        self.params = params or ItemItemParams()
        self.threads = threads or default_threads()

    def fit(self, matrix: sp.csr_matrix):
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
        from implicit.utils import ParameterWarning

        p = self.params
        if p.similarity == "cosine":
            self.model = CosineRecommender(K=p.neighbours, num_threads=self.threads)
        elif p.similarity == "bm25":
            self.model = BM25Recommender(K=p.neighbours, K1=1.2, B=0.75, num_threads=self.threads)
        else:
            raise ValueError(f"unknown similarity {p.similarity!r}")
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        with warnings.catch_warnings():
            # BM25Recommender converts its own transposed matrix and warns about it
            warnings.simplefilter("ignore", category=ParameterWarning)
            self.model.fit(matrix, show_progress=False)
        # the (item x item) neighbour matrix, K entries per row at most
        self.similarity = sp.csr_matrix(self.model.similarity)
        self.popularity = PopularityModel().fit(matrix)
        self.n_items = matrix.shape[1]
        return self

    def recommend(self, users, history, n=10, *, exclude_seen=True) -> np.ndarray:
        users = np.asarray(users)
        history = sp.csr_matrix(history, dtype=np.float32)
        out = np.full((len(users), n), -1, dtype=np.int64)
        batch = _batch_size(self.n_items)
        for start in range(0, len(users), batch):
            hist = history[start : start + batch]
            scores = (hist @ self.similarity).toarray()
            scores[scores <= 0] = -np.inf
            exclude = hist if exclude_seen else None
            out[start : start + hist.shape[0]] = top_n(scores, n, exclude)
        return fill_missing(
            out, self.popularity.recommend(users, history, n, exclude_seen=exclude_seen)
        )

    def similar_items(self, item: int, n: int = 10) -> np.ndarray:
        row = self.similarity.getrow(int(item))
        order = np.argsort(-row.data, kind="stable")
        ids = row.indices[order]
        return ids[(ids != item)][:n].astype(np.int64)


def fill_missing(primary: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Pad each row's -1 slots with the fallback row's items not already in it."""
    out = primary.copy()
    n = out.shape[1]
    for i in np.flatnonzero((out < 0).any(axis=1)):
        have = [x for x in out[i] if x >= 0]
        extra = [x for x in fallback[i] if x >= 0 and x not in have]
        merged = (have + extra)[:n]
        out[i] = -1
        out[i, : len(merged)] = merged
    return out


class CategoryFallback:
    """Content fallback for items nobody interacted with: same-category items.

    ``similar_items`` of an item lists the other items of its category, interacted-with ones by
    popularity first, then cold ones (by index); ``recommend`` ranks items by the user's
    category affinity (summed history weight per category), popularity breaking ties.
    """

    name = "category"

    def fit(self, matrix: sp.csr_matrix, item_categories):
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self.categories = np.asarray(item_categories)
        if len(self.categories) != matrix.shape[1]:
            raise ValueError("one category per item is required")
        _, self.cat_codes = np.unique(self.categories, return_inverse=True)
        self.n_categories = int(self.cat_codes.max(initial=-1)) + 1
        self.popularity = PopularityModel().fit(matrix)
        pop = self.popularity.scores
        self.pop_norm = pop / (pop.max() + 1.0) if len(pop) else pop
        self.n_items = matrix.shape[1]
        self.onehot = sp.csr_matrix(
            (np.ones(self.n_items, dtype=np.float32), (np.arange(self.n_items), self.cat_codes)),
            shape=(self.n_items, max(self.n_categories, 1)),
        )
        return self

    def similar_items(self, item: int, n: int = 10) -> np.ndarray:
        same = np.flatnonzero(self.cat_codes == self.cat_codes[int(item)])
        same = same[same != item]
        order = np.lexsort((same, -self.pop_norm[same]))
        return same[order][:n].astype(np.int64)

    def recommend(self, users, history, n=10, *, exclude_seen=True) -> np.ndarray:
        history = sp.csr_matrix(history, dtype=np.float32)
        affinity = (history @ self.onehot).toarray()
        scores = affinity[:, self.cat_codes] + self.pop_norm[None, :]
        return top_n(scores, n, history if exclude_seen else None)
