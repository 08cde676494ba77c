"""Experiment results: per-arm SQL aggregates of exposures and events, the statistics of
experiments.stats on them, stored as a ResultSnapshot per computation (so lift over time can be
drawn). Computed by the beat task, never on page load.

Per exposed visitor (analysis phase only), each metric in its attribution window after first
exposure (and, for CUPED, in the `cuped_days` before it) is stored (ExposureValue) and summed per
arm with sums of squares and products. A beat recomputes only the visitors whose values can have
changed since the last computation (see "Incremental computation" below); a recomputation from
scratch (`rebuild`) and the direct aggregate (`results_aggregates_direct`) are kept for repairs
and checks. Visitors are joined to events by their pseudonymous profile key.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    FloatField,
    OuterRef,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from core.sqlin import filter_in
from profiles.models import Event, Profile

from . import stats
from .models import (
    Experiment,
    ExperimentMetric,
    Exposure,
    ExposureValue,
    Metric,
    MetricAggregation,
    MetricKind,
    MetricRole,
    ResultSnapshot,
    ResultState,
    StatsEngine,
)

ALPHA = 0.05
HOLDOUT_ARM = "__holdout__"  # personalization.decide.HOLDOUT_ARM (no import: no cycle)
SRM_THRESHOLD = 0.001
POSTGRES_WORK_MEM = "256MB"


def _events(metric: Metric, start, end, as_of: datetime, visitor: str):
    """Events of the exposed visitor (the outer row's profile id in the column `visitor`)
    matching the metric, in [start, end)."""
    qs = Event.objects.filter(
        profile_id=OuterRef(visitor),
        type=metric.event_type,
        occurred_at__gte=start,
        occurred_at__lt=end,
    ).filter(occurred_at__lt=as_of)
    if metric.event_name:
        qs = qs.filter(name=metric.event_name)
    for name, value in (metric.property_filter or {}).items():
        qs = qs.filter(**{f"properties__{name}": value})
    return qs.order_by()


def _per_visitor(metric: Metric, start, end, as_of: datetime, *, visitor: str = "profile_id"):
    """A per-visitor value expression for the metric in [start, end); `visitor` names the outer
    row's column holding the profile id (see `_direct_visitor`)."""
    events = _events(metric, start, end, as_of, visitor)
    if metric.kind == MetricKind.CONVERSION:
        from django.db.models import Case, When

        return Case(When(Exists(events), then=Value(1.0)), default=Value(0.0))
    if metric.aggregation == MetricAggregation.SUM_VALUE:
        value = events.values("profile_id").annotate(v=Sum(Cast("value", FloatField())))
    else:
        value = events.values("profile_id").annotate(v=Cast(Count("id"), FloatField()))
    return Coalesce(Subquery(value.values("v")[:1]), Value(0.0), output_field=FloatField())


def _windows(metric: Metric, cuped_days: int) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    first = OuterRef("first_exposed_at")
    post_end = ExpressionWrapper(
        first + Value(timedelta(hours=metric.window_hours)), output_field=DateTimeField()
    )
    pre_start = ExpressionWrapper(
        first - Value(timedelta(days=cuped_days)), output_field=DateTimeField()
    )
    return (first, post_end), (pre_start, first)


def _aggregate(exposures, columns: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per arm: n and, per column, its sum; with sums of squares and of pairwise products."""
    inner = exposures.annotate(**columns).values("arm_key", *columns)
    sql, params = inner.query.sql_with_params()
    names = list(columns)
    selects = ["COUNT(*)"]
    for name in names:
        selects.append(f"SUM(x.{name})")
        selects.append(f"SUM(x.{name} * x.{name})")
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            selects.append(f"SUM(x.{a} * x.{b})")
    query = f"SELECT x.arm_key, {', '.join(selects)} FROM ({sql}) x GROUP BY x.arm_key"
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = cursor.fetchall()
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        values = iter(row[1:])
        entry: dict[str, float] = {"n": int(next(values) or 0)}
        for name in names:
            entry[f"{name}_sum"] = float(next(values) or 0)
            entry[f"{name}_ss"] = float(next(values) or 0)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                entry[f"{a}_{b}"] = float(next(values) or 0)
        out[row[0]] = entry
    return out


def _metric_condition(metric: Metric, alias: str, params: list) -> str:
    """SQL condition selecting the metric's events (PostgreSQL path)."""
    parts = [f"{alias}.type = %s"]
    params.append(metric.event_type)
    if metric.event_name:
        parts.append(f"{alias}.name = %s")
        params.append(metric.event_name)
    if metric.property_filter:
        parts.append(f"{alias}.properties @> %s::jsonb")
        params.append(json.dumps(metric.property_filter))
    return " AND ".join(parts)


def _value_sql(
    metric: Metric, condition: str, kind_conversion: bool, column: str
) -> tuple[str, str]:
    """The metric's per-visitor value in two parts: per joined event row, its contribution (NULL
    when the event does not count), and per visitor, the aggregate of the contributions."""
    if kind_conversion:
        return f"CASE WHEN {condition} THEN 1 END", f"(COUNT(j.{column}) > 0)::int::float8"
    if metric.aggregation == MetricAggregation.SUM_VALUE:
        # float8 (as on SQLite): a numeric sum's per-group state is an allocated struct, which
        # made the hash aggregate (one group per visitor) several times larger and spill.
        return (
            f"CASE WHEN {condition} THEN ev.value::float8 END",
            f"COALESCE(SUM(j.{column}), 0)",
        )
    return f"CASE WHEN {condition} THEN 1 END", f"COUNT(j.{column})::float8"


def _postgres_per_visitor(
    *,
    experiment: Experiment,
    metrics: list[Metric],
    as_of: datetime,
    ids: list[int] | None,
    with_events_only: bool = False,
    grouped_by_exposure: bool = False,
    unlinked_by_key: bool = False,
) -> tuple[str, list, list[str], list[tuple[str, str, str]]]:
    """SQL selecting, per exposure of the experiment (only `ids` when given), its id, arm and
    every metric's per-visitor values (columns `m<i>_post` and `m<i>_pre` or `m<i>_den`), for
    all metrics in one pass of hash joins (exposures -> profiles -> events) rather than a
    correlated subquery per exposure and metric: what makes 10 million exposures feasible. Each
    metric's window and event filter decide, per joined event row, the event's contribution
    (computed below the fence `OFFSET 0`, i.e. by the parallel workers when there are some);
    the per-exposure aggregate above it only counts and adds them.
    `with_events_only`: inner joins, so that exposures without an event in their windows (all
    values 0) give no row (what is stored), and the planner is free to start from the events.
    `grouped_by_exposure`: no fence, the aggregates directly over the join grouped by the
    exposure's primary key, so that the parallel workers can aggregate their rows (sorted by
    exposure, with hash aggregation off: see REBUILD_SETTINGS) and the leader only merges and
    combines the partial groups, instead of one hash table with a group per visitor.
    `unlinked_by_key`: an exposure not linked to a profile yet counts the events of the profile
    with its key (the direct computation's definition, see `_direct_visitor`); otherwise only
    linked exposures have events (the stored values: `results_values_refresh` links first).
    Returns the SQL, its parameters, the column names (two per metric: post, then pre or den)
    and per metric (key, post, second)."""
    pre_days = timedelta(days=experiment.cuped_days)
    post_window = (
        "ev.occurred_at >= x.first_exposed_at AND ev.occurred_at < x.first_exposed_at + %s"
    )
    pre_window = "ev.occurred_at >= x.first_exposed_at - %s AND ev.occurred_at < x.first_exposed_at"
    select_params: list = []
    columns: list[tuple[str, tuple[str, str]]] = []  # (name, (contribution, aggregate))
    pairs: list[tuple[str, str, str]] = []  # (metric key, first column, second column)
    types: set[str] = set()
    widest = timedelta(0)
    any_pre = False
    for i, metric in enumerate(metrics):
        window = timedelta(hours=metric.window_hours)
        widest = max(widest, window)
        types.add(metric.event_type)
        conversion = metric.kind == MetricKind.CONVERSION
        cond = _metric_condition(metric, "ev", select_params)
        columns.append(
            (
                f"m{i}_post",
                _value_sql(metric, f"{cond} AND {post_window}", conversion, f"m{i}_post"),
            )
        )
        select_params.append(window)
        if metric.kind == MetricKind.RATIO:
            den = metric.denominator
            types.add(den.event_type)
            den_cond = _metric_condition(den, "ev", select_params)
            den_conversion = den.kind == MetricKind.CONVERSION
            columns.append(
                (
                    f"m{i}_den",
                    _value_sql(den, f"{den_cond} AND {post_window}", den_conversion, f"m{i}_den"),
                )
            )
            select_params.append(window)
            pairs.append((metric.key, f"m{i}_post", f"m{i}_den"))
        else:
            any_pre = True
            cond = _metric_condition(metric, "ev", select_params)
            columns.append(
                (
                    f"m{i}_pre",
                    _value_sql(metric, f"{cond} AND {pre_window}", conversion, f"m{i}_pre"),
                )
            )
            select_params.append(pre_days)
            pairs.append((metric.key, f"m{i}_post", f"m{i}_pre"))
    where_params: list = [experiment.pk, as_of]
    where = "x.experiment_id = %s AND x.first_exposed_at < %s"
    if experiment.analysis_started_at is not None:
        where += " AND x.first_exposed_at >= %s"
        where_params.append(experiment.analysis_started_at)
    if ids is not None:
        where += " AND x.id = ANY(%s)"
        where_params.append(ids)
    join_params = [sorted(types), pre_days if any_pre else timedelta(0), widest, as_of]
    join = "JOIN" if with_events_only else "LEFT JOIN"
    if unlinked_by_key:
        profiles = "LEFT JOIN segments_profile p ON x.profile_id IS NULL AND p.key = x.profile_key"
        visitor = "COALESCE(x.profile_id, p.id)"
    else:
        # The integer id on the exposure: no join through the profiles by their text keys.
        profiles, visitor = "", "x.profile_id"
    joins = f"""
            FROM experiments_exposure x
            {profiles}
            {join} segments_event ev ON ev.profile_id = {visitor} AND ev.type = ANY(%s)
                AND ev.occurred_at >= x.first_exposed_at - %s
                AND ev.occurred_at < x.first_exposed_at + %s AND ev.occurred_at < %s
            WHERE {where}"""
    if grouped_by_exposure:
        # Each aggregate over its contribution directly (the same placeholders in the same
        # order as below); grouped by the primary key alone, the arm depends on it.
        aggregates = ", ".join(
            f"{parts[1].replace(f'j.{name}', f'({parts[0]})')} AS {name}" for name, parts in columns
        )
        sql = f"SELECT x.id, x.arm_key, {aggregates} {joins} GROUP BY x.id"
    else:
        contributions = ", ".join(f"{parts[0]} AS {name}" for name, parts in columns)
        aggregates = ", ".join(f"{parts[1]} AS {name}" for name, parts in columns)
        sql = f"""
            SELECT j.id, j.arm_key, {aggregates} FROM (
                SELECT x.id, x.arm_key, {contributions} {joins}
                OFFSET 0
            ) j
            GROUP BY j.id, j.arm_key
        """
    return sql, [*select_params, *join_params, *where_params], [c for c, _ in columns], pairs


def _aggregate_postgres(
    *, experiment: Experiment, metrics: list[Metric], as_of: datetime
) -> dict[str, dict[str, dict[str, float]]]:
    """Per metric key, the same aggregates as `_aggregate`, straight from exposures and events
    (the direct computation, kept as the reference the stored values are checked against)."""
    inner, params, names, pairs = _postgres_per_visitor(
        experiment=experiment, metrics=metrics, as_of=as_of, ids=None, unlinked_by_key=True
    )
    outer = ["COUNT(*)"]
    for name in names:
        outer += [f"SUM(u.{name})", f"SUM(u.{name} * u.{name})"]
    for _, a, b in pairs:
        outer.append(f"SUM(u.{a} * u.{b})")
    sql = f"SELECT u.arm_key, {', '.join(outer)} FROM ({inner}) u GROUP BY u.arm_key"
    with transaction.atomic(), connection.cursor() as cursor:
        # One group per exposure: enough memory that the hash aggregate does not spill to disk
        # (this transaction only).
        cursor.execute(f"SET LOCAL work_mem = '{POSTGRES_WORK_MEM}'")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    out: dict[str, dict[str, dict[str, float]]] = {m.key: {} for m in metrics}
    for row in rows:
        values = list(row[1:])
        n = int(values[0] or 0)
        sums = {}
        for j, name in enumerate(names):
            sums[f"{name}_sum"] = float(values[1 + 2 * j] or 0)
            sums[f"{name}_ss"] = float(values[2 + 2 * j] or 0)
        products = values[1 + 2 * len(names) :]
        for (key, a, b), product in zip(pairs, products, strict=True):
            second = b.split("_", 1)[1]  # "pre" or "den"
            out[key][row[0]] = {
                "n": n,
                "post_sum": sums[f"{a}_sum"],
                "post_ss": sums[f"{a}_ss"],
                f"{second}_sum": sums[f"{b}_sum"],
                f"{second}_ss": sums[f"{b}_ss"],
                f"post_{second}": float(product or 0),
            }
    return out


def results_aggregates_direct(
    *, experiment: Experiment, as_of: datetime
) -> dict[str, dict[str, dict[str, float]]]:
    """Per metric key and arm: n and the sums, computed straight from exposures and events
    (no stored values). The reference for `experiment_results --check` and the tests. Reads
    only: an exposure not linked to a profile yet counts the events of the profile with its key,
    which is what the stored values give once the computation has linked it."""
    metrics = _linked_metrics(experiment)
    if connection.vendor == "postgresql":
        return _aggregate_postgres(experiment=experiment, metrics=metrics, as_of=as_of)
    exposures = _direct_visitor(_exposures(experiment, as_of))
    return {
        metric.key: _metric_aggregates_direct(experiment, metric, exposures, as_of)
        for metric in metrics
    }


def _direct_visitor(exposures):
    """`exposures` with the column `visitor`: the linked profile's id, else the id of the
    profile with the exposure's key (None without one)."""
    by_key = Profile.objects.filter(key=OuterRef("profile_key")).values("pk")[:1]
    return exposures.annotate(visitor=Coalesce("profile_id", Subquery(by_key)))


def _metric_aggregates_direct(experiment: Experiment, metric: Metric, exposures, as_of):
    """One metric's per-arm n and sums from its per-visitor values (the database-agnostic path):
    the post window's value, and the pre-period (CUPED) or denominator (ratio) beside it."""
    post_window, pre_window = _windows(metric, experiment.cuped_days)
    columns = {"post": _per_visitor(metric, *post_window, as_of, visitor="visitor")}
    if metric.kind == MetricKind.RATIO:
        columns["den"] = _per_visitor(metric.denominator, *post_window, as_of, visitor="visitor")
    else:
        columns["pre"] = _per_visitor(metric, *pre_window, as_of, visitor="visitor")
    return _aggregate(exposures, columns)


# --- Incremental computation -------------------------------------------------------------------
#
# Every exposed visitor's metric values are stored (ExposureValue); a beat recomputes only the
# visitors whose values can have changed since the last computation (as of P, now T):
#   1. exposure rows that arrived since the exposure watermark (new visitors, late flushes);
#   2. visitors whose attribution window was still open at P (first exposure + widest window
#      > P): events in [P, T) count for them without being late;
#   3. visitors with events that arrived since the event watermark (late events, for a closed
#      window or the CUPED window before exposure).
# Everyone else's values cannot have changed (their windows end before P and no event of theirs
# arrived), so they stay folded in the stored rows; the results are then the per-arm sums over
# the stored rows, i.e. what the direct computation gives. A recomputation replaces the visitor's
# rows (idempotent: a visitor recomputed twice is harmless), so the watermarks may lag.

# Events received in the last GRACE are looked at again by the next beat: an event whose
# transaction committed after a beat read a higher id is still picked up (ingestion's
# transactions last milliseconds).
WATERMARK_GRACE = timedelta(minutes=10)
# Identity merges move events between profiles without new event rows: a full recomputation at
# least this often bounds how long such a change goes unseen.
REBUILD_EVERY = timedelta(days=1)
RECOMPUTE_CHUNK = 20_000


def _linked_metrics(experiment: Experiment) -> list[Metric]:
    links = ExperimentMetric.objects.filter(experiment=experiment).select_related(
        "metric__denominator"
    )
    return [
        link.metric
        for link in sorted(links, key=lambda x: x.metric_id)
        if not (link.metric.kind == MetricKind.RATIO and link.metric.denominator is None)
    ]


def _exposures(experiment: Experiment, as_of: datetime):
    exposures = Exposure.objects.filter(experiment=experiment, first_exposed_at__lt=as_of)
    if experiment.analysis_started_at is not None:
        exposures = exposures.filter(first_exposed_at__gte=experiment.analysis_started_at)
    return exposures


def _fingerprint(experiment: Experiment, metrics: list[Metric]) -> str:
    """Of everything a stored value depends on besides events and time: a change recomputes
    from scratch."""

    def definition(metric: Metric | None) -> list | None:
        if metric is None:
            return None
        return [
            metric.pk,
            metric.kind,
            metric.event_type,
            metric.event_name,
            metric.property_filter,
            metric.aggregation,
            metric.window_hours,
        ]

    spec = {
        "analysis_started_at": experiment.analysis_started_at.isoformat()
        if experiment.analysis_started_at
        else None,
        "cuped_days": experiment.cuped_days,
        "metrics": [[definition(m), definition(m.denominator)] for m in metrics],
        "vendor": connection.vendor,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def _partition(experiment: Experiment) -> str:
    """The experiment's partition of the stored values (PostgreSQL)."""
    return f"{ExposureValue._meta.db_table}_p{int(experiment.pk)}"


def _values_store(
    *, experiment: Experiment, metrics: list[Metric], as_of: datetime, ids: list[int] | None
) -> None:
    """Compute and store the values of the given exposures (every qualifying one when `ids` is
    None); their old rows must already be deleted."""
    if connection.vendor == "postgresql":
        inner, params, names, _pairs = _postgres_per_visitor(
            experiment=experiment, metrics=metrics, as_of=as_of, ids=ids, with_events_only=True
        )
        table = ExposureValue._meta.db_table
        numbers = ", ".join(f"u.{name}" for name in names)
        nonzero = " OR ".join(f"u.{name} <> 0" for name in names)
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{POSTGRES_WORK_MEM}'")
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {_partition(experiment)} PARTITION OF {table}"
                f" FOR VALUES IN ({int(experiment.pk)})"
            )
            cursor.execute(
                f"INSERT INTO {table} (exposure_id, experiment_id, arm_key, metric_values)"
                f" SELECT u.id, %s, u.arm_key, ARRAY[{numbers}]::float8[] FROM ({inner}) u"
                f" WHERE {nonzero}",
                [experiment.pk, *params],
            )
        return
    exposures = _exposures(experiment, as_of)
    if ids is not None:
        exposures = exposures.filter(pk__in=ids)
    columns: dict[str, Any] = {}
    for i, metric in enumerate(metrics):
        post_window, pre_window = _windows(metric, experiment.cuped_days)
        columns[f"m{i}_post"] = _per_visitor(metric, *post_window, as_of)
        if metric.kind == MetricKind.RATIO:
            columns[f"m{i}_2"] = _per_visitor(metric.denominator, *post_window, as_of)
        else:
            columns[f"m{i}_2"] = _per_visitor(metric, *pre_window, as_of)
    rows = []
    for exposure_id, arm_key, *values in exposures.annotate(**columns).values_list(
        "id", "arm_key", *columns
    ):
        row_values = [float(v or 0) for v in values]
        if any(row_values):
            rows.append(
                ExposureValue(
                    experiment_id=experiment.pk,
                    exposure_id=exposure_id,
                    arm_key=arm_key,
                    metric_values=row_values,
                )
            )
    ExposureValue.objects.bulk_create(rows, batch_size=2000)


# A recomputation from scratch on PostgreSQL builds the experiment's partition in a new table
# (CREATE TABLE AS may use parallel workers; an INSERT ... SELECT may not, on PostgreSQL 15-17),
# without an index to maintain row by row, indexes it once, and swaps it for the old partition.
# The settings hold for the computation's transaction only: parallel workers even where the
# planner's estimate of the join (a window condition it cannot see through) says few rows; sorts
# and hash joins in memory as far as they go (REBUILD_WORK_MEM: the parallel hash joins share
# their tables), and the primary key's sort (maintenance_work_mem); no JIT (its compilation is a
# large share of the leader's time, for expressions evaluated once per row); no wait for the
# WAL flush at commit (a crash loses at most a recomputation that the next beat redoes, never a
# partial one).
# For the CREATE TABLE AS only, hash aggregation is off: with one group per visitor its table
# spilled to disk even with a large work_mem and was the leader's largest cost; instead each
# worker sorts its joined rows by exposure and aggregates them (`grouped_by_exposure`), and the
# leader merges the sorted partial groups and combines them. The leader does not scan beside its
# two workers (parallel_leader_participation off): it has the merge and the writing of the new
# table to do, and on two cores a third scanning process only contends with them. The figures
# of each choice are in docs/benchmarks.md (Experiments, results from scratch).
REBUILD_WORK_MEM = "512MB"
REBUILD_SETTINGS = (
    f"work_mem = '{REBUILD_WORK_MEM}'",
    "maintenance_work_mem = '512MB'",
    "max_parallel_workers_per_gather = 2",
    "parallel_leader_participation = off",
    "parallel_setup_cost = 0",
    "parallel_tuple_cost = 0",
    "jit = off",
    "synchronous_commit = off",
)


def _values_rebuild_postgres(
    *, experiment: Experiment, metrics: list[Metric], as_of: datetime
) -> None:
    """Every stored value of the experiment recomputed: its partition rebuilt and swapped in
    (in the caller's transaction: readers see the old partition until it commits)."""
    table = ExposureValue._meta.db_table
    pk = int(experiment.pk)
    partition = _partition(experiment)
    staging = f"{table}_n{pk}"
    with connection.cursor() as cursor:
        for setting in REBUILD_SETTINGS:
            cursor.execute(f"SET LOCAL {setting}")
        cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        if metrics:
            inner, params, names, _pairs = _postgres_per_visitor(
                experiment=experiment,
                metrics=metrics,
                as_of=as_of,
                ids=None,
                with_events_only=True,
                grouped_by_exposure=True,
            )
            numbers = ", ".join(f"u.{name}" for name in names)
            nonzero = " OR ".join(f"u.{name} <> 0" for name in names)
            cursor.execute("SHOW enable_hashagg")
            hashagg = cursor.fetchone()[0]
            cursor.execute("SET LOCAL enable_hashagg = off")
            cursor.execute(
                f"CREATE TABLE {staging} AS SELECT u.id::bigint AS exposure_id,"
                f" {pk}::bigint AS experiment_id, u.arm_key::varchar(100) AS arm_key,"
                f" ARRAY[{numbers}]::float8[] AS metric_values FROM ({inner}) u WHERE {nonzero}",
                params,
            )
            # Back for the rest of the transaction (the per-arm sums group by hash).
            cursor.execute("SELECT set_config('enable_hashagg', %s, true)", [hashagg])
        else:
            cursor.execute(f"CREATE TABLE {staging} (LIKE {table})")
        # One statement checks the NOT NULLs and the partition's bound (so that ATTACH need not
        # scan again) and builds the primary key (the parent's: the partition's index is attached).
        cursor.execute(
            f"ALTER TABLE {staging} ALTER exposure_id SET NOT NULL,"
            " ALTER experiment_id SET NOT NULL, ALTER arm_key SET NOT NULL,"
            f" ALTER metric_values SET NOT NULL,"
            f" ADD CONSTRAINT {staging}_bound CHECK (experiment_id = {pk}),"
            f" ADD CONSTRAINT {staging}_pkey PRIMARY KEY (exposure_id, experiment_id)"
        )
        cursor.execute(f"DROP TABLE IF EXISTS {partition}")
        cursor.execute(f"ALTER TABLE {staging} RENAME TO {partition}")
        cursor.execute(f"ALTER INDEX {staging}_pkey RENAME TO {partition}_pkey")
        cursor.execute(
            f"ALTER TABLE {partition} RENAME CONSTRAINT {staging}_bound TO {partition}_bound"
        )
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES IN ({pk})")


def _exposures_link(exposures) -> int:
    """Link those of `exposures` without a profile to the profile with their key, where one
    exists now; the number linked. The exposures flush links a visitor who already has a
    profile; this links the rest once they have one, before their values are computed: from
    scratch, all of the experiment's (a lookup per exposure still without a profile: a visitor
    who never sends an event is looked up by every such computation; see
    benchmarks/bench_exposure_link.py); incrementally, those with an event
    since the last computation (an exposure without one has nothing to count yet) and the
    newly flushed."""
    by_key = Profile.objects.filter(key=OuterRef("profile_key"))
    return (
        exposures.filter(profile__isnull=True)
        .filter(Exists(by_key))
        .update(profile_id=Subquery(by_key.values("pk")[:1]))
    )


def _event_watermark(after: int) -> int:
    """The highest event id above `after` received before the grace period (else `after`)."""
    cutoff = timezone.now() - WATERMARK_GRACE
    found = (
        Event.objects.filter(pk__gt=after, received_at__lt=cutoff)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    return max(after, found or 0)


def _changed_exposures(
    *, experiment: Experiment, metrics: list[Metric], state: ResultState, as_of: datetime
) -> set[int]:
    """Ids of the exposures whose values can have changed since the state's computation, linked
    to their profiles first where they can be (`_exposures_link`)."""
    exposures = _exposures(experiment, as_of)
    arrived = exposures.filter(pk__gt=state.exposure_watermark)
    _exposures_link(arrived)
    ids = set(arrived.values_list("pk", flat=True))
    widest = timedelta(hours=max((m.window_hours for m in metrics), default=0))
    ids.update(
        exposures.filter(first_exposed_at__gt=state.as_of - widest).values_list("pk", flat=True)
    )
    types = sorted(
        {m.event_type for m in metrics}
        | {m.denominator.event_type for m in metrics if m.denominator_id}
    )
    visitors = list(
        Event.objects.filter(pk__gt=state.event_watermark, type__in=types)
        .values_list("profile_id", "profile__key")
        .distinct()
    )
    visitors = [(pk, key) for pk, key in visitors if key]
    # Most exposures are linked by now (the flush and the arrivals above): the lookup by key is
    # skipped when none of the experiment's is left without a profile (its partial index).
    unlinked = exposures.filter(profile__isnull=True).exists()
    for start in range(0, len(visitors), RECOMPUTE_CHUNK):
        chunk = visitors[start : start + RECOMPUTE_CHUNK]
        if unlinked:
            keys = [k for _, k in chunk]
            _exposures_link(filter_in(exposures, "profile_key", keys, cast="text"))
        ids.update(
            filter_in(exposures, "profile", [pk for pk, _ in chunk], cast="bigint").values_list(
                "pk", flat=True
            )
        )
    return ids


def results_values_refresh(
    *, experiment: Experiment, as_of: datetime, rebuild: bool = False
) -> dict[str, Any]:
    """Bring the experiment's stored values to `as_of`: incrementally, or from scratch when asked
    (`rebuild`), on the first computation, when a metric definition or the analysis start
    changed, when `as_of` goes back in time, or once every REBUILD_EVERY. Must run inside a
    transaction (the caller's), which holds the experiment's state row locked."""
    metrics = _linked_metrics(experiment)
    state, _ = ResultState.objects.select_for_update().get_or_create(experiment=experiment)
    fingerprint = _fingerprint(experiment, metrics)
    reason = None
    if rebuild:
        reason = "asked"
    elif state.as_of is None:
        reason = "first computation"
    elif state.fingerprint != fingerprint:
        reason = "metric definitions or analysis start changed"
    elif as_of < state.as_of:
        reason = "as_of before the last computation"
    elif state.rebuilt_at is None or timezone.now() - state.rebuilt_at > REBUILD_EVERY:
        reason = "periodic recomputation"
    # Watermarks read first: anything arriving during the computation is looked at again.
    exposure_mark = Exposure.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    if reason is not None:
        event_mark = _event_watermark(0)
        _exposures_link(Exposure.objects.filter(experiment=experiment))
        if connection.vendor == "postgresql":
            _values_rebuild_postgres(experiment=experiment, metrics=metrics, as_of=as_of)
        else:
            ExposureValue.objects.filter(experiment=experiment).delete()
            if metrics:
                _values_store(experiment=experiment, metrics=metrics, as_of=as_of, ids=None)
        recomputed = None
        state.rebuilt_at = timezone.now()
    else:
        event_mark = _event_watermark(state.event_watermark)
        changed = sorted(
            _changed_exposures(experiment=experiment, metrics=metrics, state=state, as_of=as_of)
        )
        for start in range(0, len(changed), RECOMPUTE_CHUNK):
            chunk = changed[start : start + RECOMPUTE_CHUNK]
            filter_in(
                ExposureValue.objects.filter(experiment=experiment),
                "exposure_id",
                chunk,
                cast="bigint",
            ).delete()
            if metrics:
                _values_store(experiment=experiment, metrics=metrics, as_of=as_of, ids=chunk)
        recomputed = len(changed)
    state.as_of = as_of
    state.exposure_watermark = exposure_mark
    state.event_watermark = event_mark
    state.fingerprint = fingerprint
    state.save()
    return {
        "mode": "incremental" if reason is None else "from scratch",
        "reason": reason,
        "visitors_recomputed": recomputed,
    }


def results_aggregates_stored(
    *, experiment: Experiment, counts: dict[str, int]
) -> dict[str, dict[str, dict[str, float]]]:
    """Per metric key and arm: n (from `counts`, the arms' exposure counts) and the sums over the
    stored values, shaped like `results_aggregates_direct`."""
    metrics = {m.pk: m for m in _linked_metrics(experiment)}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for metric in metrics.values():
        second = "den" if metric.kind == MetricKind.RATIO else "pre"
        out[metric.key] = {
            arm: {
                "n": int(n),
                "post_sum": 0.0,
                "post_ss": 0.0,
                f"{second}_sum": 0.0,
                f"{second}_ss": 0.0,
                f"post_{second}": 0.0,
            }
            for arm, n in counts.items()
            if n
        }
    ordered = list(metrics.values())  # by metric id: the order of the stored numbers
    if not ordered:
        return out

    def number(position: int) -> str:
        if connection.vendor == "postgresql":
            return f"metric_values[{position + 1}]"
        return f"json_extract(metric_values, '$[{position}]')"

    # Each number taken out of the row once, in a subquery the planner may not flatten (`OFFSET
    # 0`: else every sum below would subscript the array again, 5 per metric instead of 2).
    unpacked = ", ".join(f"{number(k)} AS v{k}" for k in range(2 * len(ordered)))
    fence = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"
    selects = []
    for i in range(len(ordered)):
        post, second = f"v{2 * i}", f"v{2 * i + 1}"
        selects += [
            f"SUM({post})",
            f"SUM({post} * {post})",
            f"SUM({second})",
            f"SUM({second} * {second})",
            f"SUM({post} * {second})",
        ]
    table = ExposureValue._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT arm_key, {', '.join(selects)} FROM (SELECT arm_key, {unpacked}"
            f" FROM {table} WHERE experiment_id = %s {fence}) s GROUP BY arm_key",
            [experiment.pk],
        )
        rows = cursor.fetchall()
    for arm, *sums in rows:
        for i, metric in enumerate(ordered):
            entry = out[metric.key].get(arm)
            if entry is None:
                continue
            second = "den" if metric.kind == MetricKind.RATIO else "pre"
            post_sum, post_ss, second_sum, second_ss, product = sums[5 * i : 5 * i + 5]
            entry["post_sum"] = float(post_sum or 0)
            entry["post_ss"] = float(post_ss or 0)
            entry[f"{second}_sum"] = float(second_sum or 0)
            entry[f"{second}_ss"] = float(second_ss or 0)
            entry[f"post_{second}"] = float(product or 0)
    return out


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _statistic(metric: Metric, agg: dict[str, float], *, cuped: bool):
    n = agg.get("n", 0)
    if metric.kind == MetricKind.RATIO:
        return stats.Ratio(
            n=n,
            numerator=stats.Mean(n=n, sum=agg["post_sum"], sum_squares=agg["post_ss"]),
            denominator=stats.Mean(n=n, sum=agg["den_sum"], sum_squares=agg["den_ss"]),
            sum_products=agg["post_den"],
        )
    if metric.kind == MetricKind.CONVERSION:
        post = stats.Proportion(n=n, conversions=min(agg["post_sum"], n))
        pre = stats.Proportion(n=n, conversions=min(agg["pre_sum"], n))
    else:
        post = stats.Mean(n=n, sum=agg["post_sum"], sum_squares=agg["post_ss"])
        pre = stats.Mean(n=n, sum=agg["pre_sum"], sum_squares=agg["pre_ss"])
    if cuped:
        return stats.Cuped(post=post, pre=pre, sum_products=agg["post_pre"])
    return post


def _compare(engine: str, control, treatment, *, relative: bool, higher_is_better: bool):
    if engine == StatsEngine.BAYESIAN:
        return stats.bayesian(control, treatment, relative=relative, inverse=not higher_is_better)
    if engine == StatsEngine.SEQUENTIAL:
        return stats.sequential_ttest(control, treatment, relative=relative)
    return stats.ttest(control, treatment, relative=relative)


EMPTY = {
    "n": 0,
    "post_sum": 0.0,
    "post_ss": 0.0,
    "pre_sum": 0.0,
    "pre_ss": 0.0,
    "post_pre": 0.0,
    "den_sum": 0.0,
    "den_ss": 0.0,
    "post_den": 0.0,
}


def metric_results(
    *,
    experiment: Experiment,
    metric: Metric,
    exposures,
    arms,
    control_key: str,
    as_of,
    aggregates: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    if aggregates is None:
        aggregates = _metric_aggregates_direct(experiment, metric, exposures, as_of)
    per_arm = []
    for arm in arms:
        agg = {
            **EMPTY,
            "den_sum": 0.0,
            "den_ss": 0.0,
            "post_den": 0.0,
            **aggregates.get(arm.key, {}),
        }
        n = agg["n"]
        denominator = agg.get("den_sum", 0.0) if metric.kind == MetricKind.RATIO else n
        per_arm.append(
            {
                "arm": arm.key,
                "n": n,
                "sum": agg["post_sum"],
                "sum_squares": agg["post_ss"],
                "mean": agg["post_sum"] / denominator if denominator else 0.0,
                "pre_sum": agg.get("pre_sum", 0.0),
                "denominator_sum": agg.get("den_sum"),
                "_agg": agg,
            }
        )
    by_key = {row["arm"]: row for row in per_arm}
    control = by_key[control_key]["_agg"]
    can_cuped = metric.kind != MetricKind.RATIO
    estimates: dict[str, Any] = {}
    for row in per_arm:
        if row["arm"] == control_key:
            continue
        entry: dict[str, Any] = {}
        for label, use_cuped in (("plain", False), ("cuped", True)):
            if use_cuped and not can_cuped:
                continue
            a = _statistic(metric, control, cuped=use_cuped)
            b = _statistic(metric, row["_agg"], cuped=use_cuped)
            entry[label] = {
                "relative": _compare(
                    experiment.engine, a, b, relative=True, higher_is_better=metric.higher_is_better
                ).as_dict(),
                "absolute": _compare(
                    experiment.engine,
                    a,
                    b,
                    relative=False,
                    higher_is_better=metric.higher_is_better,
                ).as_dict(),
            }
        estimates[row["arm"]] = entry
    holdout = None
    held = aggregates.get(HOLDOUT_ARM)
    if held and held.get("n"):
        # The global holdout against every arm pooled: the experiences as a whole vs none.
        pooled = dict(EMPTY)
        for row in per_arm:
            for name, value in row["_agg"].items():
                pooled[name] = pooled.get(name, 0) + value
        a = _statistic(metric, {**EMPTY, **held}, cuped=False)
        b = _statistic(metric, pooled, cuped=False)
        holdout = {
            "n": held["n"],
            "sum": held["post_sum"],
            "exposed_n": pooled["n"],
            "exposed_sum": pooled["post_sum"],
            **{
                scale: _compare(
                    experiment.engine,
                    a,
                    b,
                    relative=scale == "relative",
                    higher_is_better=metric.higher_is_better,
                ).as_dict()
                for scale in ("relative", "absolute")
            },
        }
    for row in per_arm:
        row.pop("_agg")
    return {"arms": per_arm, "estimates": estimates, "holdout": holdout}


def _significant_wrong_way(estimate: dict, higher_is_better: bool, engine: str) -> bool:
    if estimate.get("error"):
        return False
    expected = estimate["expected"] or 0.0
    worse = expected < 0 if higher_is_better else expected > 0
    if engine == StatsEngine.BAYESIAN:
        chance = estimate.get("chance_to_win")
        return chance is not None and chance < ALPHA
    p = estimate.get("p_value")
    return worse and p is not None and p < ALPHA


def results_compute(
    *, experiment: Experiment, as_of: datetime | None = None, rebuild: bool = False
) -> ResultSnapshot:
    """Compute and store the experiment's results as of `as_of` (now by default): the stored
    per-visitor values brought up to date (incrementally; from scratch with `rebuild`), summed
    per arm, the statistics on the sums. One transaction: concurrent runs for one experiment
    wait for each other."""
    with transaction.atomic():
        return _results_compute(experiment=experiment, as_of=as_of, rebuild=rebuild)


def _results_compute(
    *, experiment: Experiment, as_of: datetime | None, rebuild: bool
) -> ResultSnapshot:
    started = time.monotonic()
    as_of = as_of or timezone.now()
    arms = list(experiment.arms.order_by("position", "id"))
    control = next((a for a in arms if a.is_control), arms[0] if arms else None)
    computation = results_values_refresh(experiment=experiment, as_of=as_of, rebuild=rebuild)
    exposures = _exposures(experiment, as_of)
    counts = dict(exposures.values_list("arm_key").annotate(n=Count("id")).order_by())
    users = [int(counts.get(a.key, 0)) for a in arms]
    srm = stats.srm_p_value(users, [a.weight for a in arms]) if len(arms) >= 2 else None

    metrics_out = []
    p_refs: list[tuple[int, str, str]] = []
    links = ExperimentMetric.objects.filter(experiment=experiment).select_related(
        "metric__denominator"
    )
    role_order = {MetricRole.PRIMARY: 0, MetricRole.SECONDARY: 1, MetricRole.GUARDRAIL: 2}
    links = [
        link
        for link in sorted(links, key=lambda x: (role_order.get(x.role, 3), x.pk))
        if not (link.metric.kind == MetricKind.RATIO and link.metric.denominator is None)
    ]
    precomputed = results_aggregates_stored(experiment=experiment, counts=counts)
    for link in links:
        metric = link.metric
        if control is None:
            continue
        result = metric_results(
            experiment=experiment,
            metric=metric,
            exposures=exposures,
            arms=arms,
            control_key=control.key,
            as_of=as_of,
            aggregates=precomputed.get(metric.key, {}),
        )
        flagged = []
        if link.role == MetricRole.GUARDRAIL:
            for arm_key, entry in result["estimates"].items():
                if _significant_wrong_way(
                    entry["plain"]["relative"], metric.higher_is_better, experiment.engine
                ):
                    flagged.append(arm_key)
        metrics_out.append(
            {
                "key": metric.key,
                "name": metric.name,
                "role": link.role,
                "kind": metric.kind,
                "higher_is_better": metric.higher_is_better,
                "guardrail_flagged": flagged,
                **result,
            }
        )
        for arm_key, entry in result["estimates"].items():
            for label in entry:
                p_refs.append((len(metrics_out) - 1, arm_key, label))

    # Multiple comparisons across arms x metrics (frequentist p-values, relative effects).
    # Adjusted within each analysis (with CUPED, without): one family of arms x metrics each.
    for family in ("plain", "cuped"):
        refs = [r for r in p_refs if r[2] == family]
        if experiment.engine == StatsEngine.BAYESIAN or not refs:
            continue
        raw = [
            metrics_out[m]["estimates"][arm][label]["relative"]["p_value"] for m, arm, label in refs
        ]
        raw = [1.0 if p is None or not 0 <= p <= 1 else p for p in raw]
        for (m, arm, label), h, bh in zip(
            refs, stats.holm(raw), stats.benjamini_hochberg(raw), strict=True
        ):
            rel = metrics_out[m]["estimates"][arm][label]["relative"]
            rel["p_holm"] = h
            rel["p_bh"] = bh

    factorial = None
    extra = list(experiment.extra_placements.all())
    if extra and control is not None:
        from .factorial import factorial_effects

        arm_levels = {}
        for arm in experiment.arms.select_related("variant__placement").prefetch_related(
            "extra_variants__placement"
        ):
            levels = {arm.variant.placement.key: arm.variant.key}
            levels.update({v.placement.key: v.key for v in arm.extra_variants.all()})
            arm_levels[arm.key] = levels

        def comparer(better: bool):
            def compare(a, b, *, relative):
                return _compare(experiment.engine, a, b, relative=relative, higher_is_better=better)

            return compare

        factorial = {
            "factors": [experiment.placement.key, *(p.key for p in extra)],
            "arm_levels": arm_levels,
            "metrics": {
                m["key"]: factorial_effects(
                    arm_levels=arm_levels,
                    control_arm=control.key,
                    metric=m,
                    compare=comparer(m["higher_is_better"]),
                )
                for m in metrics_out
            },
        }

    data = {
        "as_of": as_of.isoformat(),
        "factorial": factorial,
        "engine": experiment.engine,
        "alpha": ALPHA,
        "analysis_started_at": (
            experiment.analysis_started_at.isoformat() if experiment.analysis_started_at else None
        ),
        "planned_sample_size": experiment.planned_sample_size,
        "control": control.key if control else None,
        "arms": [
            {
                "key": a.key,
                "name": a.name,
                "is_control": a.is_control,
                "weight": a.weight,
                "users": u,
            }
            for a, u in zip(arms, users, strict=True)
        ],
        "srm_p_value": srm,
        "srm_warning": srm is not None and srm < SRM_THRESHOLD,
        "metrics": metrics_out,
        "computation": computation,
    }
    return ResultSnapshot.objects.create(
        experiment=experiment,
        computed_at=as_of,
        users=sum(users),
        srm_p_value=srm,
        data=_clean(data),
        duration_ms=int((time.monotonic() - started) * 1000),
    )
