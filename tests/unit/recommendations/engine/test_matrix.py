"""Interactions -> CSR matrix with event weights and time decay."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine.matrix import InteractionBuilder, decay_factors

DAY = 86400.0


def test_builder__event_weights_and_duplicates__summed_per_cell():
    # Given views, a cart and a purchase of the same item by u1, an unknown event by u2
    builder = InteractionBuilder(event_weights={"view": 1.0, "cart": 3.0, "purchase": 5.0})
    builder.add(
        ["u1", "u1", "u1", "u1", "u2"],
        ["A", "A", "A", "B", "A"],
        events=["view", "cart", "purchase", "view", "unknown"],
        timestamps=[0, 0, 0, 0, 0],
    )
    # When building
    built = builder.build()
    # Then weights add up per (user, item), unknown events are ignored
    dense = built.matrix.toarray()
    u1, a, b = built.users.index("u1"), built.items.index("A"), built.items.index("B")
    assert dense[u1, a] == pytest.approx(9.0)
    assert dense[u1, b] == pytest.approx(1.0)
    assert built.matrix.nnz == 2
    # and the purchase is remembered for "exclude what was bought"
    assert built.purchased.toarray()[u1, a] == 1.0
    assert built.purchased.nnz == 1


def test_decay__one_half_life_old__half_weight():
    # Given a 7-day half-life / When / Then age 7 d -> 0.5, 14 d -> 0.25, future -> 1
    factors = decay_factors(
        np.array([100 * DAY - 7 * DAY, 86 * DAY, 101 * DAY]), 100 * DAY, 7 * DAY
    )
    assert factors == pytest.approx([0.5, 0.25, 1.0])


def test_builder__many_small_chunks__same_matrix_as_one_chunk_with_bounded_pending():
    # Given 20,000 random interactions added in chunks with a tiny compaction threshold
    rng = np.random.default_rng(0)
    users = rng.integers(0, 300, 20_000).tolist()
    items = rng.integers(0, 100, 20_000).tolist()
    ts = (rng.random(20_000) * 30 * DAY).tolist()
    chunked = InteractionBuilder(half_life=10 * DAY, reference_time=30 * DAY, compact_every=1000)
    for s in range(0, 20_000, 700):
        chunked.add(
            users[s : s + 700],
            items[s : s + 700],
            weights=[1.0] * len(users[s : s + 700]),
            timestamps=ts[s : s + 700],
        )
        # Then pending raw entries never exceed one threshold plus a chunk
        assert chunked._pending < 1000 + 700
    whole = InteractionBuilder(half_life=10 * DAY, reference_time=30 * DAY)
    whole.add(users, items, weights=[1.0] * 20_000, timestamps=ts)
    a, b = chunked.build(), whole.build()
    # Then both give the same matrix
    assert a.users == b.users
    assert a.items == b.items
    assert np.allclose(a.matrix.toarray(), b.matrix.toarray(), rtol=1e-5)


def test_decay__bad_half_life__refused():
    with pytest.raises(ValueError, match="half_life"):
        decay_factors(np.zeros(1), 0.0, -1.0)
