"""Feature matrices from the database, read in bounded chunks of profiles.

Memory: one chunk's events at a time (`chunk` profiles and their events up to the label window's
end), plus the growing matrix (profiles x features floats). Profiles are those with at least one
event at or before the instant, in primary-key order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from operator import itemgetter

import numpy as np
from django.db import connection
from django.db.models import FloatField, Func
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from core.sqlin import filter_in
from profiles.models import Event, Profile
from segments.engine.features import (
    DAY,
    EventRows,
    FeatureMatrix,
    FeatureSpec,
    Kind,
    build_feature_matrix,
    fill_missing,
    profiles_seen_by,
)
from segments.engine.propensity import Target

DEFAULT_CHUNK = 5000


class EpochSeconds(Func):
    """A timestamp column as float seconds since the Unix epoch (UTC), computed in SQL."""

    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC; julianday keeps the fraction.
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
            **extra,
        )

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra
        )


def trait_kinds() -> dict[str, Kind]:
    """Declared traits and how a model reads them: numbers as numeric, the rest as categories."""
    from identity.models import TraitDefinition, TraitType

    return {
        d.name: "numeric" if d.type == TraitType.NUMBER else "categorical"
        for d in TraitDefinition.objects.all()
    }


def events_chunk(
    profile_ids: Sequence[int],
    *,
    until: dt.datetime,
    with_name: bool = True,
    with_category: bool = True,
    contiguous: bool = False,
) -> EventRows:
    """The events of these profiles up to `until` (inclusive), as arrays.

    `with_name` / `with_category`: read the event name / the category property (blank columns
    otherwise); the features and the target say whether they need them. `contiguous`: the ids
    are every profile between the lowest and the highest (a chunk in primary-key order), so the
    query asks for that range (one index range scan instead of a lookup per id); events of
    other ids in the range (no foreign-key constraint) are dropped after the read.
    """
    columns = ["profile_id", "type", "amount", "at"]
    annotations = {
        "at": EpochSeconds("occurred_at"),
        "amount": Cast("value", FloatField()),
    }
    if with_name:
        columns.append("name")
    if with_category:
        columns.append("category")
        annotations["category"] = KT("properties__category")
    if contiguous and len(profile_ids):
        base = Event.objects.filter(
            profile_id__gte=min(profile_ids), profile_id__lte=max(profile_ids)
        )
    else:
        base = filter_in(Event.objects.all(), "profile", profile_ids, cast="bigint")
    qs = (
        base.filter(occurred_at__lte=until)
        .order_by()
        # Seconds and floats computed by the database: converting a datetime and a Decimal per
        # row in Python was most of the read's time.
        .annotate(**annotations)
        .values_list(*columns)
    )
    # One plain query and fetchall, columns straight into arrays: the queryset iterator (a
    # server-side cursor, Django's per-row converters) cost about twice pandas.read_sql on the
    # same rows. The chunk bounds the rows held at once.
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n = len(rows)

    def column(label: str, dtype) -> np.ndarray:
        # map(itemgetter) is several times faster than zip(*rows) over hundreds of thousands
        # of rows; a None value becomes NaN in a float column.
        values = list(map(itemgetter(columns.index(label)), rows))
        return np.asarray(values, dtype=dtype).reshape(n)

    name = category = None
    if with_name:
        name = np.asarray([v or "" for v in map(itemgetter(columns.index("name")), rows)], object)
    if with_category:
        category = np.asarray(
            [
                str(c)[:100] if c not in (None, "") else ""
                for c in map(itemgetter(columns.index("category")), rows)
            ],
            dtype=object,
        ).reshape(n)
    events = EventRows(
        profile=column("profile_id", np.int64),
        type=column("type", object),
        occurred_at=column("at", np.float64),
        value=column("amount", np.float64),
        name=np.full(n, "", dtype=object) if name is None else name.reshape(n),
        category=np.full(n, "", dtype=object) if category is None else category,
    )
    if contiguous:
        wanted = np.isin(events.profile, np.asarray(profile_ids, dtype=np.int64))
        if not wanted.all():
            events = events.select(wanted)
    return events


def feature_matrix_from_db(
    *,
    as_of: dt.datetime,
    specs: Sequence[FeatureSpec],
    target: Target | None = None,
    trait_target: str | None = None,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
    profile_ids: Sequence[int] | None = None,
) -> tuple[FeatureMatrix, np.ndarray | None]:
    """The matrix as of `as_of` for every profile seen by then, and the target if asked.

    `target`: an event in the window after `as_of` (labels 0/1); `trait_target`: a declared
    trait's current value (a class label per profile). `progress(profiles, chunks)` is called
    after each chunk. `profile_ids` restricts the profiles (scoring a given set).
    """
    if chunk < 1 or chunk > 100_000:
        raise ValueError("chunk must be in 1..100000")
    as_of_ts = as_of.timestamp()
    until = as_of
    if target is not None:
        until = as_of + dt.timedelta(days=target.window_days)
    parts: list[FeatureMatrix] = []
    labels: list[np.ndarray] = []
    last_pk = 0
    seen = chunks = 0
    history_start: float | None = None
    base = Profile.objects.order_by("pk")
    with_category = any(s.key.startswith("affinity.") for s in specs) or bool(
        target is not None and target.category
    )
    with_name = bool(target is not None and target.name)
    while True:
        if profile_ids is None:
            ids = list(base.filter(pk__gt=last_pk).values_list("pk", flat=True)[:chunk])
        else:
            ids = sorted(int(p) for p in profile_ids if int(p) > last_pk)[:chunk]
        if not ids:
            break
        last_pk = ids[-1]
        events = events_chunk(
            ids,
            until=until,
            with_name=with_name,
            with_category=with_category,
            # Chunks of the whole table are consecutive primary keys.
            contiguous=profile_ids is None,
        )
        keep = profiles_seen_by(events, as_of_ts)
        traits = None
        if any(s.key.startswith("trait.") for s in specs) or trait_target:
            traits = dict(
                filter_in(Profile.objects.all(), "id", keep.tolist(), cast="bigint")
                .order_by()
                .values_list("pk", "traits")
            )
        parts.append(build_feature_matrix(events, keep, as_of_ts, specs, traits=traits, fill=False))
        past = events.occurred_at[events.occurred_at <= as_of_ts]
        if len(past):
            first = float(past.min())
            history_start = first if history_start is None else min(history_start, first)
        if target is not None:
            labels.append(target.labels(events, keep, as_of_ts))
        elif trait_target:
            labels.append(
                np.asarray(
                    [_class_of((traits or {}).get(pid, {}).get(trait_target)) for pid in keep],
                    dtype=object,
                )
            )
        seen += len(keep)
        chunks += 1
        if progress is not None:
            progress(seen, chunks)
    fm = fill_missing(_concat(parts, as_of_ts, specs), specs, history_start)
    y = (
        np.concatenate(labels)
        if labels
        else (None if target is None and not trait_target else np.zeros(0))
    )
    return fm, y


def _class_of(value) -> str:
    if value is None or value == "":
        return "(missing)"
    return str(value)[:100]


def _concat(parts: list[FeatureMatrix], as_of: float, specs) -> FeatureMatrix:
    if not parts:
        return build_feature_matrix(EventRows.empty(), [], as_of, specs)
    first = parts[0]
    return FeatureMatrix(
        profile_ids=np.concatenate([p.profile_ids for p in parts]),
        as_of=as_of,
        numeric_names=first.numeric_names,
        numeric=np.vstack([p.numeric for p in parts]),
        categorical_names=first.categorical_names,
        categorical=np.vstack([p.categorical for p in parts]),
    )


def as_datetime(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


__all__ = ["DAY", "DEFAULT_CHUNK", "events_chunk", "feature_matrix_from_db", "trait_kinds"]
