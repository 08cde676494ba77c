"""rules.PathView: a value that resolves the rest of a dotted path itself (how segments/windows.py
answers ``profile.windows...`` paths from specialised getters)."""

from __future__ import annotations

from typing import Any

from rules import PathView, compile_condition


class _Recorder(PathView):
    """Answers from a table of paths and records every rest it was handed."""

    __slots__ = ("asked", "table")

    def __init__(self, table: dict[tuple[str, ...], Any]) -> None:
        self.table = table
        self.asked: list[tuple[str, ...]] = []

    def path_get(self, segments: tuple[str, ...]) -> Any:
        self.asked.append(segments)
        return self.table.get(segments)


def test_path_view__deep_path__handed_the_whole_rest_in_one_call() -> None:
    # Given a view two levels down, answering 4 for ("7d", "views", "Jazz")
    view = _Recorder({("7d", "views", "Jazz"): 4})
    fn = compile_condition({"profile.windows.7d.views.Jazz": {"$gte": 3}})

    # When the condition is evaluated
    matched = fn({"profile": {"windows": view}})

    # Then the view was asked once, for the rest of the path below it, and its answer was used
    assert matched is True
    assert view.asked == [("7d", "views", "Jazz")]


def test_path_view__answer_below_threshold_or_missing__condition_false() -> None:
    # Given views answering 2, and answering nothing (a missing key reads as None)
    fn = compile_condition({"profile.windows.7d.count": {"$gte": 3}})
    low = _Recorder({("7d", "count"): 2})
    empty = _Recorder({})

    # When evaluated on each
    # Then neither matches, and "$exists: false" holds where the view has no answer
    assert fn({"profile": {"windows": low}}) is False
    assert fn({"profile": {"windows": empty}}) is False
    absent = compile_condition({"profile.windows.7d.count": {"$exists": False}})
    assert absent({"profile": {"windows": empty}}) is True
    assert absent({"profile": {"windows": low}}) is False


def test_path_view__one_segment_below__asked_for_that_segment() -> None:
    # Given a two-segment path whose first value is the view
    view = _Recorder({("plan",): "pro"})
    fn = compile_condition({"account.plan": "pro"})

    # When evaluated
    # Then the view resolves the single remaining segment
    assert fn({"account": view}) is True
    assert view.asked == [("plan",)]


def test_path_view__view_at_the_end_of_the_path__passed_to_the_predicate_unchanged() -> None:
    # Given a condition on the view itself ($exists)
    view = _Recorder({})
    fn = compile_condition({"profile.windows": {"$exists": True}})

    # When evaluated
    # Then the view is the value (never asked to resolve anything)
    assert fn({"profile": {"windows": view}}) is True
    assert view.asked == []


def test_path_view__plain_dicts_on_the_same_path__unchanged_semantics() -> None:
    # Given the same deep condition on plain dicts, with a missing level and a number midway
    fn = compile_condition({"profile.windows.7d.views.Jazz": {"$gte": 3}})

    # When evaluated
    # Then dicts are stepped as before: a match, a missing level and a step into a number fail
    assert fn({"profile": {"windows": {"7d": {"views": {"Jazz": 3}}}}}) is True
    assert fn({"profile": {"windows": {"7d": {}}}}) is False
    assert fn({"profile": {"windows": {"7d": {"views": 5}}}}) is False
