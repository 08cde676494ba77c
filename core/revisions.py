"""One revision mechanism for the models editors change (placements, variants, segments,
experiments): an abstract `Revision` model (who, when, why, and the object's state as JSON),
snapshotting an instance's fields to JSON, recording a revision when the state changed, and
reading an object's history with what each revision changed (a line diff for long values).

The pure parts (`json_value`, `state_changes`, `line_diff`, `history_entries`) need no
database; `instance_snapshot` reads an instance's loaded fields; `revision_record` and
`revision_history` query the revision table. The admin side is core/revision_admin.py.
"""

from __future__ import annotations

import datetime as dt
import decimal
import difflib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.utils import timezone

DIFF_MAX_LINES = 200
STORED_STATE_COMMENT = "Stored state, not yet in the history"


class Revision(models.Model):
    """Who saved an object's state, when and why: the history behind "revert" (abstract).

    A concrete revision model adds a foreign key to its object and a `state` JSONField, and
    names that key in `subject_field`."""

    author = models.CharField(max_length=150, blank=True, default="")
    comment = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    subject_field = ""  # the foreign key to the revisioned object

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def subject(self) -> models.Model:
        return getattr(self, self.subject_field)


# --- snapshots (pure) --------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """`value` as JSON can keep it: datetimes and dates in ISO 8601, decimals and UUIDs as
    strings, tuples and sets as lists (sets sorted), dicts with string keys; others unchanged."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((json_value(v) for v in value), key=lambda v: json.dumps(v, default=str))
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def instance_snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The named concrete fields of an instance as JSON values: a foreign key as the related
    object's primary key (no query), other values through json_value."""
    state: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        value = getattr(instance, field.attname)  # type: ignore[union-attr]
        state[name] = json_value(value)
    return state


def restorable_part(state: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The part of a state a revert restores (to compare states: "is this current?")."""
    return {name: state.get(name) for name in keys}


# --- diffs (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "add", "del", "ctx" (unchanged context), "gap" (lines skipped), "val" (a value)
    text: str


@dataclass(frozen=True, slots=True)
class FieldChange:
    label: str
    before: str | None  # None: the first revision shown for this object, nothing to compare
    after: str
    diff: tuple[DiffLine, ...] = ()  # line by line, for values of several lines or long ones


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    revision: Any  # a Revision row
    changes: tuple[FieldChange, ...]
    is_current: bool  # the object is in this state now: reverting to it would change nothing


@dataclass(frozen=True, slots=True)
class History:
    entries: tuple[HistoryEntry, ...]
    total: int


def line_diff(before: str, after: str) -> tuple[DiffLine, ...]:
    """A unified diff of two texts, one context line around each change, bounded in length;
    empty when both are one short line (the before → after pair says it all)."""
    if "\n" not in before + after and max(len(before), len(after)) <= 60:
        return ()
    out: list[DiffLine] = []
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=1)
    for line in list(lines)[2:]:  # the ---/+++ header
        if line.startswith("@@"):
            if out:  # between two hunks: lines left out
                out.append(DiffLine("gap", "…"))
        else:
            out.append(DiffLine({"+": "add", "-": "del"}.get(line[:1], "ctx"), line[1:]))
        if len(out) >= DIFF_MAX_LINES:
            out.append(DiffLine("gap", "… (diff cut)"))
            break
    return tuple(out)


def whole_value(text: str) -> tuple[DiffLine, ...]:
    """A long or multi-line value shown whole, line by line ("val" lines, bounded), where there
    is nothing to compare it with; empty for a short single line."""
    if "\n" not in text and len(text) <= 60:
        return ()
    lines = [DiffLine("val", line) for line in text.splitlines()[:DIFF_MAX_LINES]]
    if len(text.splitlines()) > DIFF_MAX_LINES:
        lines.append(DiffLine("gap", "… (cut)"))
    return tuple(lines)


def shown_plain(state: dict[str, Any], name: str) -> str:
    """A state value as text: JSON objects and lists indented (so a diff goes line by line),
    None as empty."""
    value = state.get(name)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if value else ""
    return "" if value is None else str(value)


Shown = Callable[[dict[str, Any], str], str]


def state_changes(
    previous: dict[str, Any] | None,
    state: dict[str, Any],
    labels: dict[str, str],
    shown: Shown = shown_plain,
) -> tuple[FieldChange, ...]:
    """What `state` changed from `previous`, field by field in the order of `labels` (a line
    diff for long or multi-line values); with no previous state, every non-empty field."""
    if previous is None:
        return tuple(
            FieldChange(label, None, text, whole_value(text))
            for name, label in labels.items()
            if state.get(name) not in (None, "", {}, [])
            for text in (shown(state, name),)
        )
    changes = []
    for name, label in labels.items():
        if previous.get(name) != state.get(name):
            before, after = shown(previous, name), shown(state, name)
            changes.append(FieldChange(label, before, after, line_diff(before, after)))
    return tuple(changes)


def history_entries(
    rows: Sequence[Any],
    *,
    limit: int,
    current: dict[str, Any],
    restorable: Callable[[dict[str, Any]], dict[str, Any]],
    labels: dict[str, str],
    shown: Shown = shown_plain,
) -> tuple[HistoryEntry, ...]:
    """History entries for revision rows (newest first; one more than `limit` when there are
    more, so that the last one shown has its predecessor to compare with)."""
    return tuple(
        HistoryEntry(
            revision=revision,
            changes=state_changes(
                rows[index + 1].state if index + 1 < len(rows) else None,
                revision.state,
                labels,
                shown,
            ),
            is_current=restorable(revision.state) == current,
        )
        for index, revision in enumerate(rows[:limit])
    )


# --- database ----------------------------------------------------------------------------------


def revision_history(
    *,
    revisions: models.QuerySet,
    current: dict[str, Any],
    restorable: Callable[[dict[str, Any]], dict[str, Any]],
    labels: dict[str, str],
    shown: Shown = shown_plain,
    limit: int = 10,
) -> History:
    """The latest `limit` revisions of one object, newest first, each with what it changed from
    the one before it and whether it is `current` (one query; a second counts the revisions when
    there are more than `limit`)."""
    rows = list(revisions[: limit + 1])
    total = len(rows)
    if total > limit:
        total = revisions.count()
    entries = history_entries(
        rows, limit=limit, current=current, restorable=restorable, labels=labels, shown=shown
    )
    return History(entries=entries, total=total)


def revision_record(
    *,
    model: type[Revision],
    subject: models.Model,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    author: str,
    comment: str = "",
    restorable: Callable[[dict[str, Any]], dict[str, Any]] = lambda state: state,
) -> Revision | None:
    """Record `after` as the subject's newest revision, unless nothing a revert restores
    changed (a repeated PUT records nothing).

    `before`: the stored state before this change; None when unknown or for a creation (then
    the newest revision is compared). When the history does not hold `before` yet (an object
    created by a script, or before revisions existed), it is recorded first, so this change can
    be reverted. Returns the new revision, or None."""
    if before is not None and restorable(before) == restorable(after):
        return None
    latest = model.objects.filter(**{model.subject_field: subject}).first()  # type: ignore[attr-defined]
    if before is None and latest is not None and restorable(latest.state) == restorable(after):
        return None  # no stored state to compare with: the newest revision says it
    if before is not None and (latest is None or restorable(latest.state) != restorable(before)):
        model.objects.create(  # type: ignore[attr-defined]
            **{model.subject_field: subject}, state=before, comment=STORED_STATE_COMMENT
        )
    return model.objects.create(  # type: ignore[attr-defined]
        **{model.subject_field: subject},
        state=after,
        author=(author or "")[:150],
        comment=(comment or "")[:200],
    )


def revert_comment(revision: Revision) -> str:
    """The comment of the revision a revert records."""
    return f"Reverted to the revision of {revision.created_at:%Y-%m-%d %H:%M:%S}"
