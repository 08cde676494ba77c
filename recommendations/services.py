"""Writes of recommendations: catalog import, training runs and their serving outputs."""

from __future__ import annotations

import csv
import json
import logging
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import redis
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.redis import get_redis, key
from core.sqlin import filter_in
from core.versions import snapshot_version_bump
from segments.models import Event, Profile
from segments.services import profile_cache_write

from . import selectors
from .conf import setting
from .engine.evaluation import Dataset, run_protocol
from .engine.matrix import decay_factors, to_csr
from .engine.models import (
    ALSModel,
    CategoryFallback,
    PopularityModel,
    popularity_by_groups,
    top_n,
)
from .models import Item, RunStatus, SimilarItems, TrainingRun, VisitorRecommendation
from .serializers import ItemRowSerializer

logger = logging.getLogger(__name__)

TRAINING_LOCK = key("recs", "training")
TRAINING_LOCK_SECONDS = 3600

CATALOG_COLUMNS = (
    "sku",
    "title",
    "category",
    "price",
    "url",
    "image_url",
    "in_stock",
    "attributes",
)
CATALOG_MAX_ROWS = 200_000
CATALOG_MAX_FIELD = 10_000
CATALOG_BATCH = 1000


def serving_version_bump() -> None:
    """Tell every process to reload the serving catalog (on commit of a catalog or run change)."""
    try:
        # The snapshot's version: processes rebuild their serving catalog when it moves (as they
        # rebuild the content snapshot), so serving never asks the database or Redis per decision.
        snapshot_version_bump()
    except redis.RedisError:
        logger.warning("recommendations: could not bump the version; processes keep their copy")


# --- catalog -------------------------------------------------------------------------------------


class CatalogError(ValueError):
    """A refused catalog file: ``line`` (1-based) and ``column``."""

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None):
        self.line, self.column = line, column
        where = ", ".join(
            part
            for part in (f"line {line}" if line else "", f"column {column!r}" if column else "")
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class CatalogImportResult:
    rows: int
    created: int
    updated: int
    unchanged: int


def catalog_rows_validate(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a catalog CSV, validated like the API; the first bad one raises CatalogError."""
    previous = csv.field_size_limit()
    csv.field_size_limit(CATALOG_MAX_FIELD)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return _catalog_rows(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise CatalogError(f"not UTF-8 text ({exc.reason})") from None
    finally:
        csv.field_size_limit(previous)


def _catalog_rows(reader) -> list[dict[str, Any]]:
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CatalogError("empty file: a header row (sku,title,...) is required") from None
    except csv.Error as exc:
        raise CatalogError(f"malformed CSV ({exc})", line=1) from None
    for name in header:
        if name not in CATALOG_COLUMNS:
            raise CatalogError(
                f"unknown column (known: {', '.join(CATALOG_COLUMNS)})", line=1, column=name
            )
        if header.count(name) > 1:
            raise CatalogError("repeated column", line=1, column=name)
    for name in ("sku", "title"):
        if name not in header:
            raise CatalogError("required column missing", line=1, column=name)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CatalogError(f"malformed CSV ({exc})", line=reader.line_num) from None
        line = reader.line_num
        if not raw or (len(raw) == 1 and not raw[0].strip()):
            continue
        if len(raw) != len(header):
            raise CatalogError(f"expected {len(header)} fields, found {len(raw)}", line=line)
        if len(rows) >= CATALOG_MAX_ROWS:
            raise CatalogError(f"more than {CATALOG_MAX_ROWS} rows", line=line)
        data: dict[str, Any] = {}
        for name, value in zip(header, raw, strict=True):
            value = value.strip()
            if value == "" and name not in ("sku", "title"):
                continue  # an empty optional cell: the field's default
            if name == "attributes":
                try:
                    value = json.loads(value)
                except ValueError:
                    raise CatalogError("not JSON", line=line, column=name) from None
            data[name] = value
        serializer = ItemRowSerializer(data=data)
        if not serializer.is_valid():
            column, messages = next(iter(serializer.errors.items()))
            message = messages[0] if isinstance(messages, list) else messages
            raise CatalogError(str(message), line=line, column=column)
        sku = serializer.validated_data["sku"]
        if sku in seen:
            raise CatalogError(f"sku repeated (first on line {seen[sku]})", line=line, column="sku")
        seen[sku] = line
        rows.append(serializer.validated_data)
    return rows


def catalog_rows_from_dicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate rows given as dicts (the demo seed, scripts) like the CSV import does."""
    out = []
    for index, data in enumerate(rows):
        serializer = ItemRowSerializer(data=data)
        if not serializer.is_valid():
            column, messages = next(iter(serializer.errors.items()))
            raise CatalogError(str(messages[0]), line=index + 1, column=column)
        out.append(serializer.validated_data)
    return out


def catalog_import(
    *, rows: list[dict[str, Any]], progress: Callable[[int], None] | None = None
) -> CatalogImportResult:
    """Create or update items by sku, all in one transaction (idempotent: a second import of the
    same rows changes nothing); ``progress`` hears how many rows each batch handled."""
    created = updated = unchanged = 0
    fields = [f for f in CATALOG_COLUMNS if f != "sku"]
    defaults = {f: Item._meta.get_field(f).get_default() for f in fields}
    with transaction.atomic():
        for start in range(0, len(rows), CATALOG_BATCH):
            batch = rows[start : start + CATALOG_BATCH]
            existing = Item.objects.in_bulk([r["sku"] for r in batch], field_name="sku")
            new, changed = [], []
            for row in batch:
                values = {f: row.get(f, defaults[f]) for f in fields}
                item = existing.get(row["sku"])
                if item is None:
                    new.append(Item(sku=row["sku"], **values))
                    continue
                if all(_same(getattr(item, f), v) for f, v in values.items()):
                    unchanged += 1
                    continue
                for f, v in values.items():
                    setattr(item, f, v)
                item.updated_at = timezone.now()
                changed.append(item)
            Item.objects.bulk_create(new, batch_size=CATALOG_BATCH)
            Item.objects.bulk_update(changed, [*fields, "updated_at"], batch_size=CATALOG_BATCH)
            created += len(new)
            updated += len(changed)
            if progress is not None:
                progress(len(batch))
        if created or updated:
            transaction.on_commit(serving_version_bump)
    return CatalogImportResult(len(rows), created, updated, unchanged)


def _same(current: Any, new: Any) -> bool:
    if current is None or new is None:
        return current is None and new is None
    return current == new


# --- training -----------------------------------------------------------------------------------


@dataclass
class _Collected:
    dataset: Dataset
    profile_ids: np.ndarray  # profile id per user code
    skus: list[str]  # sku per item code (the whole catalog: cold items included)
    categories: list[str]
    purchased: np.ndarray  # per interaction row: is it a purchase


def interactions_collect(*, now=None) -> _Collected:
    """Events -> coded interactions: event weight x time decay, catalog skus only, bounded."""
    now = now or timezone.now()
    weights: dict[str, float] = dict(setting("MOSAIC_RECS_EVENT_WEIGHTS"))
    half_life_days = setting("MOSAIC_RECS_HALF_LIFE_DAYS")
    half_life = float(half_life_days) * 86400.0 if half_life_days else None
    catalog = selectors.catalog_skus()
    skus = list(catalog)
    item_code = {sku: i for i, sku in enumerate(skus)}
    user_code: dict[int, int] = {}
    users, items = array("q"), array("q")
    values, stamps = array("d"), array("d")
    bought = array("b")
    limit = int(setting("MOSAIC_RECS_MAX_INTERACTIONS"))
    since = now - timedelta(days=int(setting("MOSAIC_RECS_WINDOW_DAYS")))
    for chunk in selectors.interaction_chunks(
        since=since, event_types=list(weights), chunk_size=int(setting("MOSAIC_RECS_CHUNK"))
    ):
        for _pk, profile_id, event_type, occurred_at, sku in chunk:
            code = item_code.get(sku) if isinstance(sku, str) else None
            if code is None:
                continue  # not a catalog item (or no sku): nothing to recommend from it
            users.append(user_code.setdefault(profile_id, len(user_code)))
            items.append(code)
            values.append(weights[event_type])
            stamps.append(occurred_at.timestamp())
            bought.append(event_type == "purchase")
        if len(users) >= limit:
            break  # bounded: chunks come newest id first, so the latest stored are kept
    n = len(users)
    keep = slice(0, min(n, limit))
    ts = np.frombuffer(stamps, dtype=np.float64)[keep] if n else np.empty(0)
    w = np.frombuffer(values, dtype=np.float64)[keep] if n else np.empty(0)
    w = w * decay_factors(ts, now.timestamp(), half_life)
    profile_ids = np.empty(len(user_code), dtype=np.int64)
    for pid, code in user_code.items():
        profile_ids[code] = pid
    return _Collected(
        dataset=Dataset(
            users=np.frombuffer(users, dtype=np.int64)[keep] if n else np.empty(0, np.int64),
            items=np.frombuffer(items, dtype=np.int64)[keep] if n else np.empty(0, np.int64),
            weights=w.astype(np.float32),
            timestamps=ts,
            n_users=len(user_code),
            n_items=len(skus),
        ),
        profile_ids=profile_ids,
        skus=skus,
        categories=[catalog[s] for s in skus],
        purchased=np.frombuffer(bought, dtype=np.int8)[keep].astype(bool)
        if n
        else np.empty(0, bool),
    )


def training_run(
    *, trigger: str = "manual", threads: int | None = None, tuning_seconds: float | None = None
) -> TrainingRun | None:
    """Train, evaluate against popularity, and activate (or flag) a run; None if one is running.

    Evaluation is the offline protocol (per-user time split, tuning on a validation split of
    the training part only); the model is activated only when its precision@k and NDCG@k on the
    test part beat popularity's. Activation writes every visitor's top-N, similar items and
    popularity lists, then rewrites the affected profile documents (decide reads them there).
    """
    r = get_redis()
    token = str(time.time())
    if not r.set(TRAINING_LOCK, token, nx=True, ex=TRAINING_LOCK_SECONDS):
        logger.info("recommendations: a training is already running")
        return None
    run = TrainingRun.objects.create(trigger=trigger[:16], k=int(setting("MOSAIC_RECS_K")))
    started = time.monotonic()
    try:
        _train(run, threads=threads, tuning_seconds=tuning_seconds)
    except Exception as exc:
        run.status = RunStatus.FAILED
        run.note = f"{type(exc).__name__}: {exc}"[:2000]
        logger.exception("recommendations: training run %s failed", run.pk)
    finally:
        run.finished_at = timezone.now()
        run.seconds = round(time.monotonic() - started, 2)
        run.save()
        if r.get(TRAINING_LOCK) == token.encode():
            r.delete(TRAINING_LOCK)
    return run


def _train(run: TrainingRun, *, threads: int | None, tuning_seconds: float | None) -> None:
    collected = interactions_collect()
    data = collected.dataset
    run.interactions, run.users, run.items = len(data.users), data.n_users, data.n_items
    exclude = setting("MOSAIC_RECS_EXCLUDE")
    if exclude not in ("purchased", "interacted", "none"):
        raise ValueError(f"MOSAIC_RECS_EXCLUDE must be purchased, interacted or none: {exclude!r}")
    report = run_protocol(
        data,
        k=run.k,
        exclude_seen=exclude != "none",
        budget_seconds=float(
            setting("MOSAIC_RECS_TUNING_SECONDS") if tuning_seconds is None else tuning_seconds
        ),
        threads=threads,
    )
    run.protocol = report.protocol
    run.evaluated_users = report.protocol["evaluated_users"]
    if not report.results:
        run.status = RunStatus.EMPTY
        run.note = "No visitor has 5 interactions with catalog items yet: nothing to evaluate."
        return
    als, pop = report.results["als"], report.results["popularity"]
    run.params = {
        "als": report.protocol["als_params"],
        "item_item": report.protocol["item_item_params"],
        "exclude": exclude,
        "event_weights": setting("MOSAIC_RECS_EVENT_WEIGHTS"),
        "half_life_days": setting("MOSAIC_RECS_HALF_LIFE_DAYS"),
        "item_item_figures": report.results["item_item"],
    }
    for name in ("precision", "recall", "map", "ndcg", "coverage"):
        setattr(run, name, als[name])
        setattr(run, f"baseline_{name}", pop[name])
    run.beats_baseline = als["precision"] > pop["precision"] and als["ndcg"] > pop["ndcg"]
    if not run.beats_baseline:
        run.status = RunStatus.FLAGGED
        run.note = "ALS did not beat popularity on the test part; the active run is unchanged."
        return
    _activate(run, collected, exclude=exclude, threads=threads)


def _activate(run: TrainingRun, collected: _Collected, *, exclude: str, threads) -> None:
    from .engine.models import ALSParams

    data = collected.dataset
    shape = (data.n_users, data.n_items)
    matrix = to_csr(data.users, data.items, data.weights, shape)
    model = ALSModel(ALSParams(**run.params["als"]), threads=threads).fit(matrix)
    if exclude == "interacted":
        excluded = matrix
    elif exclude == "purchased":
        p = collected.purchased
        excluded = to_csr(data.users[p], data.items[p], np.ones(int(p.sum())), shape)
    else:
        excluded = None
    n = int(setting("MOSAIC_RECS_TOP_N"))
    users = np.arange(data.n_users)
    if excluded is None:
        recs = model.recommend(users, matrix, n, exclude_seen=False)
    else:
        recs = model.recommend(users, excluded, n, exclude_seen=True)
    skus = collected.skus
    popularity = PopularityModel().fit(matrix, item_categories=collected.categories)
    run.popular = {
        "global": [skus[i] for i in popularity.top(50)],
        "by_category": {
            str(cat): [skus[i] for i in popularity.top(20, category=cat)]
            for cat in sorted(set(collected.categories))
        },
        "by_segment": _segment_popularity(matrix, collected),
    }
    similar = _similar_items(model, matrix, collected, int(setting("MOSAIC_RECS_SIMILAR_N")))
    now = timezone.now()
    profile_ids = collected.profile_ids
    with transaction.atomic():
        TrainingRun.objects.filter(status=RunStatus.ACTIVE).update(status=RunStatus.SUPERSEDED)
        # Rows of visitors this run does not cover go: they get popularity from now on.
        stale = list(
            VisitorRecommendation.objects.exclude(run=run).values_list("profile_id", flat=True)
        )
        VisitorRecommendation.objects.exclude(run=run).delete()
        existing = set(
            Profile.objects.filter(pk__in=profile_ids.tolist()).values_list("pk", flat=True)
        )
        rows = [
            VisitorRecommendation(
                profile_id=int(pid),
                run=run,
                items=[skus[i] for i in recs[code] if i >= 0],
                computed_at=now,
            )
            for code, pid in enumerate(profile_ids)
            if int(pid) in existing
        ]
        VisitorRecommendation.objects.bulk_create(rows, batch_size=2000)
        SimilarItems.objects.bulk_create(
            [
                SimilarItems(run=run, sku=skus[i], similar=[skus[j] for j in sims])
                for i, sims in similar.items()
                if len(sims)
            ],
            batch_size=2000,
        )
        SimilarItems.objects.exclude(run=run).delete()
        run.status = RunStatus.ACTIVE
        run.visitors_written = len(rows)
        factors = np.ascontiguousarray(model.model.item_factors, dtype=np.float32)
        run.item_factors = factors.tobytes()
        run.item_factors_shape = list(factors.shape)
        run.item_skus = skus
        # events received from the run's start on are folded in by the refresh task
        run.refreshed_until = run.started_at
        run.save()
        transaction.on_commit(serving_version_bump)
    touched = sorted(set(stale) | {r.profile_id for r in rows})
    for start in range(0, len(touched), 2000):
        profile_cache_write(profile_ids=touched[start : start + 2000])


@dataclass(frozen=True)
class RefreshResult:
    run_id: int | None
    visitors: int
    events: int


REFRESH_MAX_EVENTS = 20_000


def recommendations_refresh(*, max_events: int = REFRESH_MAX_EVENTS) -> RefreshResult:
    """Fold visitors whose behaviour changed since the active run (or the last refresh) into it:
    their factors are solved against the run's item factors (ALS's recalculate-user), their
    lists and profile documents rewritten. Bounded: the visitors of at most ``max_events`` newly
    received events per call, oldest first; the next call goes on from there."""
    from .engine.models import ALSParams

    run = selectors.run_active()
    if run is None or not run.item_factors or not run.item_skus:
        return RefreshResult(None, 0, 0)
    since = run.refreshed_until or run.started_at
    weights: dict[str, float] = dict(
        run.params.get("event_weights") or setting("MOSAIC_RECS_EVENT_WEIGHTS")
    )
    changed = list(
        Event.objects.filter(received_at__gt=since, type__in=list(weights))
        .order_by("received_at", "pk")
        .values_list("profile_id", "received_at")[:max_events]
    )
    now = timezone.now()
    if not changed:
        TrainingRun.objects.filter(pk=run.pk).update(refreshed_until=now)
        return RefreshResult(run.pk, 0, 0)
    until = changed[-1][1] if len(changed) == max_events else now
    profile_ids = sorted({pid for pid, _ in changed})
    row_of = {pid: r for r, pid in enumerate(profile_ids)}
    sku_index = {sku: i for i, sku in enumerate(run.item_skus)}
    half_life_days = setting("MOSAIC_RECS_HALF_LIFE_DAYS")
    half_life = float(half_life_days) * 86400.0 if half_life_days else None
    window = now - timedelta(days=int(setting("MOSAIC_RECS_WINDOW_DAYS")))
    users, items, values, stamps, bought = [], [], [], [], []
    history = (
        filter_in(
            Event.objects.filter(type__in=list(weights), occurred_at__gte=window),
            "profile",
            profile_ids,
            cast="bigint",
        )
        .order_by()
        .values_list("profile_id", "type", "occurred_at", "properties__sku")
    )
    for profile_id, event_type, occurred_at, sku in history.iterator(chunk_size=5000):
        code = sku_index.get(sku) if isinstance(sku, str) else None
        if code is None:
            continue
        users.append(row_of[profile_id])
        items.append(code)
        values.append(weights[event_type])
        stamps.append(occurred_at.timestamp())
        bought.append(event_type == "purchase")
    shape = (len(profile_ids), len(run.item_skus))
    w = np.asarray(values, dtype=np.float64) * decay_factors(
        np.asarray(stamps, dtype=np.float64), now.timestamp(), half_life
    )
    u, i = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    matrix = to_csr(u, i, w, shape)
    exclude = run.params.get("exclude", "purchased")
    if exclude == "interacted":
        excluded = matrix
    elif exclude == "purchased":
        b = np.asarray(bought, dtype=bool)
        excluded = to_csr(u[b], i[b], np.ones(int(b.sum())), shape)
    else:
        excluded = None
    factors = np.frombuffer(bytes(run.item_factors), dtype=np.float32).reshape(
        run.item_factors_shape
    )
    model = ALSModel.from_item_factors(ALSParams(**run.params["als"]), factors)
    recs = model.recommend_histories(matrix, int(setting("MOSAIC_RECS_TOP_N")), exclude=excluded)
    skus = run.item_skus
    has_history = np.diff(matrix.indptr) > 0
    with transaction.atomic():
        VisitorRecommendation.objects.filter(profile_id__in=profile_ids).delete()
        VisitorRecommendation.objects.bulk_create(
            [
                VisitorRecommendation(
                    profile_id=pid, run=run, items=[skus[j] for j in recs[r] if j >= 0]
                )
                for r, pid in enumerate(profile_ids)
                if has_history[r]
            ],
            batch_size=2000,
        )
        TrainingRun.objects.filter(pk=run.pk).update(
            refreshed_until=until, visitors_refreshed=F("visitors_refreshed") + len(profile_ids)
        )
    for start in range(0, len(profile_ids), 2000):
        profile_cache_write(profile_ids=profile_ids[start : start + 2000])
    return RefreshResult(run.pk, len(profile_ids), len(changed))


def _segment_popularity(matrix, collected: _Collected) -> dict[str, dict[str, Any]]:
    """Per active segment with enough interacting members: its most popular items (the
    cold-start list of its members without a list of their own; served by decide from the
    profile document's segment keys, see serving.block_items)."""
    code_of = {int(pid): code for code, pid in enumerate(collected.profile_ids)}
    members = selectors.segment_members(profile_ids=code_of.keys())
    groups = {
        key: np.fromiter((code_of[pid] for pid in pids), dtype=np.int64, count=len(pids))
        for key, pids in members.items()
    }
    lists = popularity_by_groups(
        matrix,
        groups,
        n=int(setting("MOSAIC_RECS_SEGMENT_TOP_N")),
        min_users=int(setting("MOSAIC_RECS_SEGMENT_MIN_USERS")),
        max_groups=int(setting("MOSAIC_RECS_SEGMENT_MAX")),
    )
    skus = collected.skus
    return {
        key: {"users": users, "items": [skus[i] for i in items]}
        for key, (users, items) in lists.items()
    }


def _similar_items(model: ALSModel, matrix, collected: _Collected, n: int) -> dict[int, Any]:
    """Per item: the most similar items by ALS factors (cosine), or by category when nobody has
    interacted with the item yet (cold items have no meaningful factors)."""
    factors = np.asarray(model.model.item_factors, dtype=np.float32)
    norms = np.linalg.norm(factors, axis=1)
    norms[norms == 0] = 1.0
    unit = factors / norms[:, None]
    interacted = np.asarray((matrix > 0).sum(axis=0)).ravel() > 0
    warm = np.flatnonzero(interacted)
    out: dict[int, Any] = {}
    batch = max(1, 4_000_000 // max(len(warm), 1))
    for start in range(0, len(warm), batch):
        rows = warm[start : start + batch]
        scores = unit[rows] @ unit[warm].T
        scores[np.arange(len(rows)), start + np.arange(len(rows))] = -np.inf
        best = top_n(scores, n)
        for r, row in zip(rows, best, strict=True):
            out[int(r)] = [int(warm[j]) for j in row if j >= 0]
    fallback = CategoryFallback().fit(matrix, collected.categories)
    for item in np.flatnonzero(~interacted):
        out[int(item)] = fallback.similar_items(int(item), n).tolist()
    return out
