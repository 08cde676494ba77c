"""The one revision mechanism (core/revisions.py): snapshots as JSON, what a revision changed
(a line diff for long values), which revision is current, and recording only real changes.
The pure parts run without a database."""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

import pytest

from core.revisions import (
    DIFF_MAX_LINES,
    STORED_STATE_COMMENT,
    history_entries,
    instance_snapshot,
    json_value,
    line_diff,
    revision_record,
    state_changes,
)

LABELS = {"name": "name", "condition": "condition", "weight": "weight"}


def test_json_value__datetimes_decimals_sets_tuples__json_types():
    # Given values JSON cannot keep as they are
    value = {
        "at": dt.datetime(2026, 12, 7, 3, 4, 5, tzinfo=dt.UTC),
        "day": dt.date(2026, 12, 7),
        "price": decimal.Decimal("1.50"),
        "ids": {3, 1, 2},
        "pair": (1, "a"),
        7: None,
    }
    # When converted
    converted = json_value(value)
    # Then each is a JSON type, sets sorted, keys strings
    assert converted == {
        "at": "2026-12-07T03:04:05+00:00",
        "day": "2026-12-07",
        "price": "1.50",
        "ids": [1, 2, 3],
        "pair": [1, "a"],
        "7": None,
    }


def test_instance_snapshot__unsaved_segment__fields_as_json_without_database():
    # Given an unsaved segment (no database involved)
    from segments.models import Segment

    segment = Segment(key="vip", name="VIP", condition={"profile.traits.tier": "gold"})
    # When snapshotted
    state = instance_snapshot(segment, ["name", "condition", "is_active", "computed_at"])
    # Then the fields are there as JSON values
    assert state == {
        "name": "VIP",
        "condition": {"profile.traits.tier": "gold"},
        "is_active": True,
        "computed_at": None,
    }


def test_state_changes__first_revision__every_non_empty_field_without_before():
    # Given no previous state
    changes = state_changes(None, {"name": "A", "condition": {}, "weight": 1}, LABELS)
    # Then the non-empty fields are listed, with nothing to compare
    assert [(c.label, c.before, c.after) for c in changes] == [
        ("name", None, "A"),
        ("weight", None, "1"),
    ]


def test_state_changes__first_revision_long_value__shown_whole_line_by_line():
    # Given a first revision whose condition is a JSON object of several lines
    state = {"condition": {"a": 1, "b": 2}}
    # When listed with nothing to compare with
    (change,) = state_changes(None, state, LABELS)
    # Then the whole value is there line by line, not cut at a line's length
    assert [line.kind for line in change.diff] == ["val"] * 4
    assert [line.text for line in change.diff][1:3] == ['  "a": 1,', '  "b": 2']


def test_state_changes__one_field_changed__only_that_field_before_and_after():
    # Given two states differing in the weight only
    before = {"name": "A", "condition": {"a": 1}, "weight": 1}
    after = {"name": "A", "condition": {"a": 1}, "weight": 3}
    # When compared
    changes = state_changes(before, after, LABELS)
    # Then only the weight shows, short values without a line diff
    assert [(c.label, c.before, c.after, c.diff) for c in changes] == [("weight", "1", "3", ())]


def test_state_changes__long_json_changed__line_diff_of_the_changed_key():
    # Given a condition that gains a key
    before = {"condition": {"profile.traits.tier": "gold"}}
    after = {"condition": {"profile.traits.tier": "gold", "profile.traits.plan": "pro"}}
    # When compared
    (change,) = state_changes(before, after, LABELS)
    # Then the diff adds exactly the new line and keeps the old one as context
    added = [line.text for line in change.diff if line.kind == "add"]
    assert added == ['  "profile.traits.plan": "pro",']
    assert not [line for line in change.diff if line.kind == "del"]


def test_line_diff__short_single_lines__no_diff():
    assert line_diff("a", "b") == ()


def test_line_diff__huge_texts__bounded_and_says_cut():
    # Given two texts differing on every one of 1,000 lines
    before = "\n".join(f"a{i}" for i in range(1000))
    after = "\n".join(f"b{i}" for i in range(1000))
    # When diffed
    diff = line_diff(before, after)
    # Then the diff stops at its bound and says so
    assert len(diff) == DIFF_MAX_LINES + 1
    assert diff[-1].text == "… (diff cut)"


@dataclass
class _Row:
    state: dict[str, Any]


def test_history_entries__newest_first__each_compared_with_the_one_before_and_current_marked():
    # Given three revisions, newest first, the newest being the current state
    rows = [_Row({"name": "C"}), _Row({"name": "B"}), _Row({"name": "A"})]
    # When the latest two are read
    entries = history_entries(
        rows, limit=2, current={"name": "C"}, restorable=lambda s: s, labels={"name": "name"}
    )
    # Then each says what it changed from the one before (even the last shown), and which is
    # current
    assert [(e.changes[0].before, e.changes[0].after) for e in entries] == [("B", "C"), ("A", "B")]
    assert [e.is_current for e in entries] == [True, False]


@pytest.fixture
def segment(db):
    from segments.models import Segment

    return Segment.objects.create(key="vip", name="VIP")


def test_revision_record__same_state__nothing_recorded(segment):
    from segments.models import SegmentRevision

    # Given a recorded state
    revision_record(
        model=SegmentRevision, subject=segment, before=None, after={"name": "VIP"}, author="a"
    )
    # When the same state is recorded again, with or without the state before
    again = revision_record(
        model=SegmentRevision, subject=segment, before=None, after={"name": "VIP"}, author="a"
    )
    same = revision_record(
        model=SegmentRevision,
        subject=segment,
        before={"name": "VIP"},
        after={"name": "VIP"},
        author="a",
    )
    # Then nothing new is written
    assert (again, same) == (None, None)
    assert SegmentRevision.objects.count() == 1


def test_revision_record__stored_state_not_in_history__recorded_first(segment):
    from segments.models import SegmentRevision

    # Given an object changed outside the history (no revision yet)
    # When a change is recorded with the stored state before it
    revision = revision_record(
        model=SegmentRevision,
        subject=segment,
        before={"name": "VIP"},
        after={"name": "Gold"},
        author="ann",
        comment="renamed",
    )
    # Then the state before is recorded first (so the change can be reverted), then the change
    oldest, newest = SegmentRevision.objects.order_by("id")
    assert (oldest.state, oldest.comment, oldest.author) == (
        {"name": "VIP"},
        STORED_STATE_COMMENT,
        "",
    )
    assert newest == revision
    assert (newest.state, newest.author, newest.comment) == ({"name": "Gold"}, "ann", "renamed")
