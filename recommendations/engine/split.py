"""Per-user time split: the last share of every eligible user's interactions is held out.

Users with at least ``min_interactions`` interactions give their last ``round(share * n)`` (at least
one) interactions, ordered by timestamp (ties kept in input order), to the held-out part; everybody
else's interactions stay in the training part. The same function carves the validation split out
of the training part, so hyperparameters are never chosen on the test part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """Boolean masks over the input rows: ``train`` and ``test`` partition them."""

    train: np.ndarray
    test: np.ndarray


def time_split(
    users: np.ndarray,
    timestamps: np.ndarray,
    *,
    share: float = 0.2,
    min_interactions: int = 5,
) -> Split:
    """Split rows per user by time; ``users`` are integer codes, ``timestamps`` numbers."""
    if not 0.0 < share < 1.0:
        raise ValueError("share must be between 0 and 1")
    users = np.asarray(users)
    n = len(users)
    test = np.zeros(n, dtype=bool)
    if n == 0:
        return Split(train=~test, test=test)
    order = np.lexsort((np.arange(n), np.asarray(timestamps), users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, n])
    # position of each sorted row inside its user's history
    position = np.arange(n) - np.repeat(starts, counts)
    per_row_count = np.repeat(counts, counts)
    n_held = np.maximum(1, np.floor(share * per_row_count + 0.5)).astype(np.int64)
    held = (per_row_count >= min_interactions) & (position >= per_row_count - n_held)
    test[order[held]] = True
    return Split(train=~test, test=test)
