"""Per-user time split."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.engine.split import time_split


def test_time_split__ten_interactions__last_two_by_time_held_out():
    # Given one user with 10 interactions given out of time order
    ts = np.array([5, 1, 9, 3, 7, 2, 10, 4, 8, 6], dtype=float)
    users = np.zeros(10, dtype=int)
    # When splitting 20 %
    split = time_split(users, ts)
    # Then the two latest (t=9, t=10) are the test part
    assert sorted(ts[split.test]) == [9, 10]
    assert (split.train ^ split.test).all()


def test_time_split__user_below_minimum__all_in_training():
    # Given a user with 4 interactions and one with 5
    users = np.array([0] * 4 + [1] * 5)
    ts = np.arange(9, dtype=float)
    # When / Then only the 5-interaction user gives one held-out interaction, their latest
    split = time_split(users, ts)
    assert split.test.tolist() == [False] * 8 + [True]


def test_time_split__ties__broken_by_input_order():
    # Given equal timestamps / When splitting / Then the last row in input order is held out
    split = time_split(np.zeros(5, dtype=int), np.zeros(5))
    assert split.test.tolist() == [False, False, False, False, True]


def test_time_split__many_users__each_holds_out_a_rounded_fifth_of_latest():
    # Given users with random sizes and timestamps
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(200), rng.integers(1, 30, 200))
    ts = rng.random(len(users))
    # When splitting
    split = time_split(users, ts)
    # Then per eligible user, held-out rows are the latest round(0.2 n) (>= 1), none otherwise
    for u in range(200):
        mine = users == u
        n = int(mine.sum())
        held = split.test & mine
        expected = max(1, int(np.floor(0.2 * n + 0.5))) if n >= 5 else 0
        assert held.sum() == expected
        if expected:
            assert ts[held].min() >= ts[mine & split.train].max()


def test_time_split__bad_share__refused():
    with pytest.raises(ValueError, match="share"):
        time_split(np.zeros(3, dtype=int), np.zeros(3), share=1.5)
