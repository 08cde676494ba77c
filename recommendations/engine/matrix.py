"""Interactions as a scipy.sparse CSR user x item matrix, built chunk by chunk in bounded memory.

Each interaction (user, item, event type or weight, timestamp) contributes
``event_weight * weight * 0.5 ** ((reference_time - timestamp) / half_life)`` to its cell;
repeated (user, item) pairs add up. The builder keeps at most ``compact_every`` pending entries
before folding them into the CSR matrix, so memory is bounded by the number of distinct
(user, item) pairs plus one chunk, whatever the number of raw interactions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

DEFAULT_EVENT_WEIGHTS: Mapping[str, float] = {
    "product_view": 1.0,
    "add_to_cart": 3.0,
    "purchase": 5.0,
}


@dataclass
class Interactions:
    """A CSR matrix (rows = users, columns = items) and the labels of its rows and columns."""

    matrix: sp.csr_matrix
    users: list
    items: list
    purchased: sp.csr_matrix | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def user_index(self) -> dict:
        return {u: i for i, u in enumerate(self.users)}

    def item_index(self) -> dict:
        return {it: i for i, it in enumerate(self.items)}


def decay_factors(timestamps: np.ndarray, reference: float, half_life: float | None) -> np.ndarray:
    """Exponential decay ``0.5 ** (age / half_life)`` (1 for no half-life; future ages count 0)."""
    ts = np.asarray(timestamps, dtype=np.float64)
    if half_life is None:
        return np.ones_like(ts)
    if not (half_life > 0 and math.isfinite(half_life)):
        raise ValueError("half_life must be a positive number of seconds")
    age = np.maximum(reference - ts, 0.0)
    return np.power(0.5, age / half_life)


@dataclass
class InteractionBuilder:
    """Accumulates interaction chunks into a CSR matrix with bounded memory.

    ``event_weights`` maps event types to weights (unknown types are ignored); ``half_life`` is in
    seconds (None: no decay); ``reference_time`` is "now" for the decay (Unix seconds).
    """

    event_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    half_life: float | None = None
    reference_time: float = 0.0
    compact_every: int = 1_000_000
    purchase_event: str = "purchase"
    _users: dict = field(default_factory=dict)
    _items: dict = field(default_factory=dict)
    _rows: list = field(default_factory=list)
    _cols: list = field(default_factory=list)
    _vals: list = field(default_factory=list)
    _bought_rows: list = field(default_factory=list)
    _bought_cols: list = field(default_factory=list)
    _pending: int = 0
    _matrix: sp.coo_matrix | None = None
    _bought: sp.coo_matrix | None = None

    def _code(self, table: dict, labels: Iterable) -> np.ndarray:
        return np.fromiter(
            (table.setdefault(label, len(table)) for label in labels), dtype=np.int64
        )

    def add(
        self,
        users: Iterable,
        items: Iterable,
        *,
        timestamps: Iterable[float],
        events: Iterable[str] | None = None,
        weights: Iterable[float] | None = None,
    ) -> None:
        """Add one chunk; ``events`` (looked up in ``event_weights``) and/or raw ``weights``."""
        users, items = list(users), list(items)
        ts = np.asarray(list(timestamps), dtype=np.float64)
        n = len(users)
        if len(items) != n or len(ts) != n:
            raise ValueError("users, items and timestamps must have the same length")
        value = np.ones(n, dtype=np.float64)
        bought = np.zeros(n, dtype=bool)
        if events is not None:
            events = list(events)
            value *= np.array([self.event_weights.get(e, 0.0) for e in events], dtype=np.float64)
            bought = np.array([e == self.purchase_event for e in events], dtype=bool)
        if weights is not None:
            value *= np.asarray(list(weights), dtype=np.float64)
        value *= decay_factors(ts, self.reference_time, self.half_life)
        keep = value > 0
        if not keep.all():
            users = [u for u, k in zip(users, keep, strict=True) if k]
            items = [i for i, k in zip(items, keep, strict=True) if k]
            bought = bought[keep]
            value = value[keep]
        rows = self._code(self._users, users)
        cols = self._code(self._items, items)
        self._rows.append(rows)
        self._cols.append(cols)
        self._vals.append(value.astype(np.float32))
        if bought.any():
            self._bought_rows.append(rows[bought])
            self._bought_cols.append(cols[bought])
        self._pending += len(rows)
        if self._pending >= self.compact_every:
            self._compact()

    def _compact(self) -> None:
        shape = (max(len(self._users), 1), max(len(self._items), 1))
        self._matrix = _fold(self._matrix, self._rows, self._cols, self._vals, shape)
        if self._bought_rows:
            ones = [np.ones(len(r), dtype=np.float32) for r in self._bought_rows]
            self._bought = _fold(self._bought, self._bought_rows, self._bought_cols, ones, shape)
        self._rows, self._cols, self._vals = [], [], []
        self._bought_rows, self._bought_cols = [], []
        self._pending = 0

    def build(self) -> Interactions:
        """The matrix of everything added so far (float32 CSR, duplicates summed)."""
        self._compact()
        shape = (len(self._users), len(self._items))
        matrix = _resize(self._matrix, shape)
        bought = _resize(self._bought, shape)
        bought.data[:] = 1.0
        return Interactions(
            matrix=matrix,
            users=list(self._users),
            items=list(self._items),
            purchased=bought,
        )


def _fold(base, rows, cols, vals, shape) -> sp.coo_matrix:
    parts_r = [np.asarray(r) for r in rows]
    parts_c = [np.asarray(c) for c in cols]
    parts_v = [np.asarray(v, dtype=np.float32) for v in vals]
    if base is not None:
        parts_r.append(base.row)
        parts_c.append(base.col)
        parts_v.append(base.data)
    if not parts_r:
        return sp.coo_matrix(shape, dtype=np.float32)
    r = np.concatenate(parts_r)
    c = np.concatenate(parts_c)
    v = np.concatenate(parts_v)
    folded = sp.csr_matrix((v, (r, c)), shape=shape, dtype=np.float32)
    folded.sum_duplicates()
    return folded.tocoo()


def _resize(coo, shape) -> sp.csr_matrix:
    if coo is None or shape[0] == 0 or shape[1] == 0:
        return sp.csr_matrix(shape, dtype=np.float32)
    coo = sp.coo_matrix((coo.data, (coo.row, coo.col)), shape=shape, dtype=np.float32)
    out = coo.tocsr()
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


def to_csr(
    user_codes: np.ndarray, item_codes: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """A float32 CSR matrix from coded triples (duplicates summed)."""
    out = sp.csr_matrix(
        (np.asarray(values, dtype=np.float32), (user_codes, item_codes)),
        shape=shape,
        dtype=np.float32,
    )
    out.sum_duplicates()
    out.eliminate_zeros()
    return out
