"""Models: popularity, item-item, ALS, category fallback, on small planted data."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommendations.engine.evaluation import Dataset, run_protocol
from recommendations.engine.models import (
    ALSModel,
    ALSParams,
    CategoryFallback,
    ItemItemModel,
    PopularityModel,
    popularity_by_groups,
    top_n,
)
from recommendations.engine.synthetic import generate


def _matrix(rows):
    """A 0/1 user x item matrix from lists of item indices per user."""
    n_items = 1 + max(i for r in rows for i in r)
    data = [(u, i) for u, r in enumerate(rows) for i in r]
    u, i = zip(*data, strict=True)
    return sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(len(rows), n_items))


def test_top_n__exclusions_and_short_rows__padded_with_minus_one():
    # Given scores for 3 items, item 0 excluded, -inf for item 2
    scores = np.array([[5.0, 3.0, -np.inf]])
    # When asking for 3 / Then only item 1 is left, the rest padded
    assert top_n(scores, 3, sp.csr_matrix([[1, 0, 0]])).tolist() == [[1, -1, -1]]


def test_popularity__excludes_seen__next_most_popular():
    # Given item 0 seen by 3 users, item 1 by 2, item 2 by 1
    m = _matrix([[0, 1, 2], [0, 1], [0]])
    pop = PopularityModel().fit(m, item_categories=["x", "y", "x"], user_groups=["g", "h", "h"])
    # When recommending to user 1 (who saw 0 and 1) / Then only item 2 remains
    assert pop.recommend([1], m[[1]], 2).tolist() == [[2, -1]]
    assert pop.recommend([1], m[[1]], 2, exclude_seen=False).tolist() == [[0, 1]]
    # and per category / per group rankings
    assert pop.top(5, category="x").tolist() == [0, 2]
    assert pop.top(5, group="h").tolist() == [0, 1]


def test_popularity_by_groups__overlapping_segments__each_ranked_by_its_own_members():
    # Given users 0-2 (segment a) who like item 3, users 2-5 (segment b) who like item 1, and
    # user 2 in both; item 0 is liked by everybody
    m = _matrix([[0, 3], [0, 3], [0, 3, 1], [0, 1], [0, 1, 2], [1]])
    # When computing popularity per segment
    lists = popularity_by_groups(
        m, {"a": [0, 1, 2], "b": [2, 3, 4, 5]}, n=5, min_users=2, min_item_users=2, max_groups=10
    )
    # Then each segment's list counts its own members only (user 2 counts in both), ties by
    # index, and items only one member liked (item 2 in b) are left out
    assert {k: (users, items.tolist()) for k, (users, items) in lists.items()} == {
        "a": (3, [0, 3]),
        "b": (4, [1, 0]),
    }


def test_popularity_by_groups__bounds__small_segments_dropped_largest_kept_top_n():
    # Given segments of 1, 3 and 4 interacting members (plus a member with no interaction and
    # out-of-range rows, which do not count)
    m = sp.vstack(
        [_matrix([[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2], [0]]), sp.csr_matrix((1, 3))]
    )
    m = sp.csr_matrix(m)
    groups = {"tiny": [0], "mid": [0, 1, 2, 5, 99, -1], "big": [0, 1, 2, 3]}
    # When asking for at most 1 segment of at least 2 members, 2 items each
    lists = popularity_by_groups(m, groups, n=2, min_users=2, max_groups=1)
    # Then only the largest qualifying segment is kept, with its top 2
    assert {k: (u, items.tolist()) for k, (u, items) in lists.items()} == {"big": (4, [0, 1])}
    # and with room for two, the 3-member one ("mid": row 5 has no interaction) is added
    lists = popularity_by_groups(m, groups, n=2, min_users=2, max_groups=5)
    assert sorted(lists) == ["big", "mid"]
    assert lists["mid"][0] == 3


def test_category_fallback__cold_item__similar_items_from_its_category():
    # Given items 0..4 with categories a, a, b, a, b; items 3 and 4 never interacted with
    m = _matrix([[0, 1], [0, 2], [0]])
    m = sp.csr_matrix((m.data, m.indices, m.indptr), shape=(3, 5))
    fb = CategoryFallback().fit(m, ["a", "a", "b", "a", "b"])
    # When asking items similar to the cold item 3 / Then same category, popular first
    assert fb.similar_items(3, 5).tolist() == [0, 1]
    # and a user who saw the b item 2 gets the cold b item 4 first, then a items by popularity
    assert fb.recommend([0], sp.csr_matrix([[0, 0, 1, 0, 0]]), 3).tolist() == [[4, 0, 1]]


def test_models__planted_taste_groups__als_and_item_item_beat_popularity():
    # Given synthetic data with 4 taste groups
    data = generate(n_interactions=20_000, n_users=1000, n_items=400, n_groups=4, seed=11)
    ds = Dataset(
        data.users,
        data.items,
        np.ones(len(data.users)),
        data.timestamps,
        data.n_users,
        data.n_items,
    )
    # When running the protocol with a tiny tuning budget
    report = run_protocol(ds, k=10, budget_seconds=120, threads=1)
    # Then both collaborative models clearly beat popularity on the test part
    pop = report.results["popularity"]["precision"]
    assert report.results["als"]["precision"] > 1.5 * pop
    assert report.results["item_item"]["precision"] > 1.5 * pop
    assert report.protocol["evaluated_users"] > 900


def test_als__similar_items__same_taste_cluster():
    # Given synthetic data with strong tastes and an ALS fit
    data = generate(
        n_interactions=30_000, n_users=1000, n_items=200, n_groups=4, taste_strength=0.9, seed=5
    )
    m = sp.csr_matrix(
        (np.ones(len(data.users), dtype=np.float32), (data.users, data.items)),
        shape=(data.n_users, data.n_items),
    )
    als = ALSModel(ALSParams(factors=16, iterations=10), threads=1).fit(m)
    # When asking for items similar to item 0 / Then most share its cluster
    similar = als.similar_items(0, 10)
    assert 0 not in similar
    assert (data.item_cluster[similar] == data.item_cluster[0]).mean() >= 0.8
    # and a new visitor's history (recalculate_user) gets items of that cluster
    history = sp.csr_matrix(([1.0] * 3, ([0, 0, 0], similar[:3])), shape=(1, data.n_items))
    recs = als.recommend_from_history(history, 10)
    assert not set(recs) & set(similar[:3])
    assert (data.item_cluster[recs] == data.item_cluster[0]).mean() >= 0.8


def test_item_item__bm25_and_cosine__similar_items_in_cluster():
    data = generate(
        n_interactions=30_000, n_users=1000, n_items=200, n_groups=4, taste_strength=0.9, seed=5
    )
    m = sp.csr_matrix(
        (np.ones(len(data.users), dtype=np.float32), (data.users, data.items)),
        shape=(data.n_users, data.n_items),
    )
    for similarity in ("bm25", "cosine"):
        from recommendations.engine.models import ItemItemParams

        model = ItemItemModel(ItemItemParams(similarity, 50), threads=1).fit(m)
        similar = model.similar_items(3, 10)
        assert (data.item_cluster[similar] == data.item_cluster[3]).mean() >= 0.8, similarity


def test_als_recommend__history_covers_almost_everything__seen_excluded_rest_padded():
    # Given a user who has seen 3 of 4 items
    m = _matrix([[0, 1, 2], [0], [1, 2, 3]])
    als = ALSModel(ALSParams(factors=2, iterations=5), threads=1).fit(m)
    # When asking for 3 items
    recs = als.recommend(np.arange(3), m, 3)
    # Then only the unseen items are listed, the rest padded with -1
    assert recs[0].tolist() == [3, -1, -1]
    assert recs[2].tolist() == [0, -1, -1]
    assert sorted(recs[1].tolist()) == [1, 2, 3]
    # and without exclusion every item can come back
    assert sorted(als.recommend(np.arange(3), m, 4, exclude_seen=False)[0].tolist()) == [0, 1, 2, 3]
