"""A synthetic shop with planted taste groups, to check that the models learn what is there.

- The catalogue of ``n_items`` is cut into ``n_groups`` equal clusters of items; item j belongs to
  cluster ``j % n_groups`` and to category ``cluster % n_categories`` (categories follow tastes).
- Every user belongs to one taste group (uniformly at random).
- Each interaction is, with probability ``taste_strength``, an item of the user's own cluster drawn
  by a Zipf-like popularity (exponent ``zipf``) inside the cluster; otherwise an item of the whole
  catalogue drawn by a global Zipf-like popularity (the "bestsellers" every group buys).
- Users' activity is skewed (Pareto-like number of interactions, at least ``min_per_user``).
- Event types: product_view 70 %, add_to_cart 20 %, purchase 10 %; timestamps uniform over
  ``span_days`` ending at ``end``.

A popularity model only sees the global and within-cluster heads; ALS and item-item can recover
the clusters, so they should beat it by a wide margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EVENT_TYPES = np.array(["product_view", "add_to_cart", "purchase"])
EVENT_PROBS = np.array([0.7, 0.2, 0.1])


@dataclass
class SyntheticData:
    users: np.ndarray  # int user index
    items: np.ndarray  # int item index
    events: np.ndarray  # event type strings
    timestamps: np.ndarray  # Unix seconds (float)
    user_group: np.ndarray  # taste group of every user
    item_cluster: np.ndarray  # taste cluster of every item
    item_category: np.ndarray  # category of every item
    n_users: int
    n_items: int


def _zipf_probs(n: int, exponent: float) -> np.ndarray:
    p = 1.0 / np.power(np.arange(1, n + 1), exponent)
    return p / p.sum()


def generate(
    *,
    n_interactions: int = 100_000,
    n_users: int = 5_000,
    n_items: int = 2_000,
    n_groups: int = 8,
    n_categories: int = 8,
    taste_strength: float = 0.7,
    zipf: float = 0.8,
    min_per_user: int = 3,
    span_days: float = 90.0,
    end: float = 1_780_000_000.0,
    seed: int = 7,
) -> SyntheticData:
    """Interactions with planted taste groups (see the module docstring)."""
    if n_items < n_groups or n_users < 1 or n_interactions < n_users * min_per_user:
        raise ValueError("need n_items >= n_groups and n_interactions >= n_users * min_per_user")
    rng = np.random.default_rng(seed)
    item_cluster = np.arange(n_items) % n_groups
    item_category = item_cluster % n_categories
    user_group = rng.integers(0, n_groups, n_users)
    # skewed activity: every user has min_per_user, the rest spread by Pareto weights
    activity = rng.pareto(1.5, n_users) + 1.0
    extra = n_interactions - n_users * min_per_user
    counts = np.full(n_users, min_per_user) + rng.multinomial(extra, activity / activity.sum())
    users = np.repeat(np.arange(n_users), counts)
    # a random (fixed) popularity order of items globally and inside every cluster
    global_order = rng.permutation(n_items)
    global_p = _zipf_probs(n_items, zipf)
    cluster_members = [rng.permutation(np.flatnonzero(item_cluster == g)) for g in range(n_groups)]
    in_taste = rng.random(n_interactions) < taste_strength
    items = np.empty(n_interactions, dtype=np.int64)
    n_global = int((~in_taste).sum())
    items[~in_taste] = global_order[rng.choice(n_items, n_global, p=global_p)]
    groups_of_rows = user_group[users]
    for g in range(n_groups):
        rows = np.flatnonzero(in_taste & (groups_of_rows == g))
        members = cluster_members[g]
        picks = rng.choice(len(members), len(rows), p=_zipf_probs(len(members), zipf))
        items[rows] = members[picks]
    events = EVENT_TYPES[rng.choice(3, n_interactions, p=EVENT_PROBS)]
    timestamps = end - rng.random(n_interactions) * span_days * 86400.0
    return SyntheticData(
        users=users,
        items=items,
        events=events,
        timestamps=timestamps,
        user_group=user_group,
        item_cluster=item_cluster,
        item_category=item_category,
        n_users=n_users,
        n_items=n_items,
    )
