"""The immutable, compiled view of everything a decision needs, kept in process memory.

Live placements, variants (conditions compiled to closures, templates compiled), and running
experiments are built once into a Snapshot. A version number in Redis, bumped on commit of any
admin change, tells each process to rebuild; it is checked at most every CHECK_INTERVAL seconds.
If Redis is unreachable, a process keeps serving the snapshot it has.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Case, Q, When

from content.models import Placement, Variant, VariantStatus
from content.rendering import template_compile
from core.redis import get_redis, key
from core.versions import snapshot_version_bump, snapshot_version_read
from experiments.engine import ExperimentSpec
from experiments.models import Experiment, ExperimentStatus
from rules import compile_condition, condition_fields
from segments.windows import windows_read

logger = logging.getLogger(__name__)

SOURCE_KEY = key("snapshot", "source")  # the last built snapshot's source, with its version
CHECK_INTERVAL = 0.5
DATABASE_RETRY_SECONDS = 5.0

Matcher = Callable[[Mapping[str, Any]], bool]


@functools.lru_cache(maxsize=8192)
def _template_compiled(source: str) -> tuple[Any, dict[str, Any]]:
    """The compiled template for a source, and its globals flattened (shared by identical sources
    across variants and rebuilds: an unchanged template is compiled once per process)."""
    template = template_compile(source)
    return template, dict(template.globals)


class LazyTemplate:
    """A variant's template: compiled on first render, then rendered without Jinja's per-call
    copying of its globals ChainMap. Compile errors surface at render time, where the caller's
    `template_render` turns them into a fallback like any other template failure."""

    __slots__ = ("_compiled", "_error", "source")

    def __init__(self, source: str) -> None:
        self.source = source or ""
        self._compiled: tuple[Any, dict[str, Any]] | None = None
        self._error: Exception | None = None

    def prepare(self) -> None:
        """Compile now (once per process); raises what compiling raises, every time."""
        if self._compiled is None:
            if self._error is not None:
                raise self._error
            try:
                self._compiled = _template_compiled(self.source)
            except Exception as exc:
                self._error = exc
                raise

    def render(self, context: Mapping[str, Any]) -> str:
        if self._compiled is None:
            self.prepare()
        template, template_globals = self._compiled
        environment = template.environment
        jinja_context = environment.context_class(
            environment,
            {**template_globals, **context},
            template.name,
            template.blocks,
            globals=template_globals,
        )
        return environment.concat(template.root_render_func(jinja_context))


def _reads_profile(condition: dict[str, Any]) -> bool:
    return any(
        path == "profile" or path.startswith("profile.") for path in condition_fields(condition)
    )


@dataclass(frozen=True, slots=True)
class CompiledVariant:
    key: str
    template: Any
    fields: Mapping[str, Any]  # the block type's values, as `fields` in the template
    data: Mapping[str, Any]
    matches: Matcher | None  # None: matches everyone
    reads_profile: bool
    locale: str
    starts_at: datetime | None
    ends_at: datetime | None
    # What decide answers in `data` (block fields and payload), merged once here, not per call.
    answer_data: Mapping[str, Any]
    block: str = ""  # the block type's key ("recommendations" gets items, see decide)

    @property
    def scheduled(self) -> bool:
        """Whether a schedule applies at all (most variants have none: no time check)."""
        return self.starts_at is not None or self.ends_at is not None

    def is_scheduled(self, now: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and (
            self.ends_at is None or now < self.ends_at
        )


@dataclass(frozen=True, slots=True)
class CompiledExperiment:
    key: str
    spec: ExperimentSpec | None  # None for a rollout
    arm_variants: tuple[str, ...]  # variant key per arm, by arm index
    eligible: Matcher | None
    reads_profile: bool
    sticky: bool = False
    # A stopped experiment rolling out its winner: this variant for everyone, nothing logged.
    rollout_variant: str | None = None


@dataclass(frozen=True, slots=True)
class PlacementPlan:
    key: str
    default: CompiledVariant | None
    targeted: tuple[CompiledVariant, ...]  # live, non-default, by priority then creation
    by_key: Mapping[str, CompiledVariant]
    experiment: CompiledExperiment | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    placements: Mapping[str, PlacementPlan]
    # Share of visitors (0..1) who never enter any experiment (the global holdout).
    holdout: float = 0.0
    # Whether any running experiment is sticky (decide then reads the visitor's sticky arms).
    any_sticky: bool = False
    #: Some live condition reads profile.windows: decide folds them at its now (segments.windows).
    reads_windows: bool = False
    # False for the empty stand-in served when neither the database nor Redis could give the
    # configuration (a process started while both were down): every placement then answers
    # `fallback:snapshot_unavailable`.
    available: bool = True


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def block_data(payload: Mapping[str, Any], fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """What decide answers in `data`: a block variant's field values with its payload over them
    (the payload is the editor's explicit word for apps), else the payload alone. Both are the
    variant's own static content: nothing from the visitor's profile, so it needs no consent
    beyond the one that chose the variant."""
    if not fields:
        return dict(payload or {})
    return {**fields, **(payload or {})}


def _compile_variant(variant: dict[str, Any]) -> CompiledVariant:
    condition = variant["condition"] or {}
    fields = dict(variant["block_fields"] or {}) if variant.get("block_type_id") else None
    payload = dict(variant["data"] or {})
    return CompiledVariant(
        key=variant["key"],
        template=LazyTemplate(variant["source"]),
        fields=MappingProxyType(dict(variant["block_fields"] or {})),
        data=MappingProxyType(dict(variant["data"] or {})),
        matches=compile_condition(condition) if condition else None,
        reads_profile=_reads_profile(condition),
        locale=variant["locale"],
        starts_at=_when(variant["starts_at"]),
        ends_at=_when(variant["ends_at"]),
        answer_data=MappingProxyType(block_data(payload, fields)),
        block=variant.get("block_key") or "",
    )


def snapshot_source_read() -> dict[str, Any]:
    """The live configuration as plain JSON-ready data (a handful of queries): what a snapshot
    is compiled from, and what is kept in Redis for a process that starts without a database."""
    placements = [
        {"id": p.pk, "key": p.key, "default_variant_id": p.default_variant_id}
        for p in Placement.objects.all()
    ]
    variants = [
        {
            "id": v.pk,
            "placement_id": v.placement_id,
            "key": v.key,
            "block_type_id": v.block_type_id,
            "block_key": v.block_type.key if v.block_type_id else "",
            "status": v.status,
            "source": v.render_source(),
            "block_fields": v.block_fields,
            "data": v.data,
            "condition": v.condition,
            "locale": v.locale,
            "starts_at": v.starts_at.isoformat() if v.starts_at else None,
            "ends_at": v.ends_at.isoformat() if v.ends_at else None,
        }
        for v in Variant.objects.select_related("block_type").order_by(
            "priority", "created_at", "id"
        )
    ]
    experiments = [
        {
            # A multivariate experiment serves each of its placements (one factor each).
            "placement_ids": [e.placement_id, *(p.pk for p in e.extra_placements.all())],
            "key": e.key,
            "status": e.status,
            "seed": e.seed,
            "coverage": e.coverage,
            "condition": e.condition,
            "sticky": e.sticky,
            "layer": e.layer,
            "layer_start": e.layer_start,
            "layer_end": e.layer_end,
            "rollout_arm_id": e.rollout_arm_id,
            "arms": [
                {
                    "id": arm.pk,
                    "key": arm.key,
                    "weight": arm.weight,
                    "variant_id": arm.variant_id,
                    "extra_variant_ids": [v.pk for v in arm.extra_variants.all()],
                }
                for arm in e.arms.all()
            ],
        }
        for e in Experiment.objects.filter(
            Q(status=ExperimentStatus.RUNNING)
            | Q(status=ExperimentStatus.STOPPED, rollout_arm__isnull=False)
        )
        .prefetch_related("arms__variant", "arms__extra_variants", "extra_placements")
        # Running experiments last, so one wins over a rollout of the same placement.
        .order_by(Case(When(status=ExperimentStatus.RUNNING, then=1), default=0), "created_at")
    ]
    return {"placements": placements, "variants": variants, "experiments": experiments}


def snapshot_compile(version: int, source: dict[str, Any]) -> Snapshot:
    """Compile a snapshot from its source (snapshot_source_read's shape)."""
    variants_by_placement: dict[int, list[dict[str, Any]]] = {}
    for variant in source["variants"]:
        variants_by_placement.setdefault(variant["placement_id"], []).append(variant)
    experiments: dict[int, dict[str, Any]] = {}
    for e in source["experiments"]:
        for placement_id in e["placement_ids"]:
            experiments[placement_id] = e
    plans: dict[str, PlacementPlan] = {}
    for placement in source["placements"]:
        variants = variants_by_placement.get(placement["id"], [])
        compiled = {v["id"]: _compile_variant(v) for v in variants}
        default_id = placement["default_variant_id"]
        experiment = experiments.get(placement["id"])
        arm_variant_ids = (
            {
                v_id
                for arm in experiment["arms"]
                for v_id in (arm["variant_id"], *arm["extra_variant_ids"])
            }
            if experiment
            else set()
        )
        targeted = tuple(
            compiled[v["id"]]
            for v in variants
            if v["status"] == VariantStatus.LIVE
            and v["id"] != default_id
            and v["id"] not in arm_variant_ids
        )
        plans[placement["key"]] = PlacementPlan(
            key=placement["key"],
            default=compiled.get(default_id),
            targeted=targeted,
            by_key=MappingProxyType({c.key: c for c in compiled.values()}),
            experiment=_compile_experiment(experiment, compiled) if experiment else None,
        )
    conditions = [v["condition"] for vs in variants_by_placement.values() for v in vs] + [
        e["condition"] for e in experiments.values()
    ]
    reads_windows = any(windows_read(condition_fields(c)) for c in conditions if c)
    return Snapshot(
        version=version,
        placements=MappingProxyType(plans),
        holdout=_holdout(),
        any_sticky=any(p.experiment is not None and p.experiment.sticky for p in plans.values()),
        reads_windows=reads_windows,
    )


def _holdout() -> float:
    """MOSAIC_EXPERIMENTS_HOLDOUT_PERCENT as a share; absurd values mean no holdout (logged)."""
    value = getattr(settings, "MOSAIC_EXPERIMENTS_HOLDOUT_PERCENT", 0) or 0
    if isinstance(value, int | float) and 0 <= value <= 100:
        return float(value) / 100
    logger.warning("MOSAIC_EXPERIMENTS_HOLDOUT_PERCENT=%r ignored: not in [0, 100]", value)
    return 0.0


def snapshot_build(version: int) -> Snapshot:
    """Read live configuration from the database and compile it; its source is kept in Redis
    (SOURCE_KEY) for processes that start while the database is down."""
    source = snapshot_source_read()
    try:
        get_redis().set(SOURCE_KEY, json.dumps({"version": version, "source": source}))
    except redis.RedisError:
        logger.warning("snapshot: could not keep its source in Redis")
    return snapshot_compile(version, source)


def snapshot_from_redis() -> Snapshot | None:
    """The last snapshot any process built, from its source in Redis; None if there is none."""
    raw = get_redis().get(SOURCE_KEY)
    if not raw:
        return None
    kept = json.loads(raw)
    return snapshot_compile(int(kept["version"]), kept["source"])


UNAVAILABLE = Snapshot(version=-1, placements=MappingProxyType({}), available=False)


def _compile_experiment(
    experiment: dict[str, Any], compiled: dict[int, CompiledVariant]
) -> CompiledExperiment | None:
    arms = experiment["arms"]
    # Each arm's variant on this placement (the main one, or a multivariate factor's).
    on_placement = {arm["id"]: _arm_variant_id(arm, compiled) for arm in arms}
    if experiment["status"] == ExperimentStatus.STOPPED:
        rollout_variant = on_placement.get(experiment["rollout_arm_id"])
        if rollout_variant is None:
            return None
        return CompiledExperiment(
            key=experiment["key"],
            spec=None,
            arm_variants=(),
            eligible=None,
            reads_profile=False,
            rollout_variant=compiled[rollout_variant].key,
        )
    if len(arms) < 2 or any(on_placement[arm["id"]] is None for arm in arms):
        logger.warning("experiment %s skipped: needs two arms on its placement", experiment["key"])
        return None
    condition = experiment["condition"] or {}
    try:
        spec = ExperimentSpec(
            key=experiment["key"],
            seed=experiment["seed"] or experiment["key"],
            arm_keys=tuple(arm["key"] for arm in arms),
            weights=_normalised([arm["weight"] for arm in arms]),
            coverage=experiment["coverage"],
            namespace=(
                (experiment["layer"], experiment["layer_start"], experiment["layer_end"])
                if experiment["layer"]
                else None
            ),
        )
    except ValueError as exc:
        logger.warning("experiment %s skipped: %s", experiment["key"], exc)
        return None
    return CompiledExperiment(
        key=experiment["key"],
        spec=spec,
        arm_variants=tuple(compiled[on_placement[arm["id"]]].key for arm in arms),
        eligible=compile_condition(condition) if condition else None,
        reads_profile=_reads_profile(condition),
        sticky=experiment["sticky"],
    )


def _arm_variant_id(arm: dict[str, Any], compiled: dict[int, CompiledVariant]) -> int | None:
    if arm["variant_id"] in compiled:
        return arm["variant_id"]
    return next((v_id for v_id in arm["extra_variant_ids"] if v_id in compiled), None)


def _normalised(weights: list[float]) -> tuple[float, ...]:
    """Editors type relative weights (1, 1, 2); bucketing wants shares that sum to 1."""
    total = sum(weights)
    if total <= 0:
        return tuple(1 / len(weights) for _ in weights)
    return tuple(w / total for w in weights)


def snapshot_bump() -> None:
    """Tell every process to rebuild (called on commit of any change to delivery config)."""
    try:
        snapshot_version_bump()
    except redis.RedisError:
        logger.warning("snapshot: could not bump the version; processes keep their snapshot")


class SnapshotHolder:
    """Per-process holder: serves the current snapshot, rebuilding when the version moves."""

    def __init__(self, check_interval: float = CHECK_INTERVAL) -> None:
        self.check_interval = check_interval
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._database_retry_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> Snapshot:
        snapshot = self._snapshot
        now = time.monotonic()
        if snapshot is not None and now - self._checked_at < self.check_interval:
            return snapshot
        self._checked_at = now
        try:
            version = snapshot_version_read()
        except redis.RedisError:
            if snapshot is not None:
                return snapshot
            version = -1
        if snapshot is not None and snapshot.version == version:
            return snapshot
        if snapshot is not None and now < self._database_retry_at:
            return snapshot  # the database failed a moment ago: not again on every request
        # Another thread already rebuilding: keep serving the old snapshot meanwhile.
        if not self._lock.acquire(blocking=snapshot is None):
            return snapshot  # type: ignore[return-value]
        try:
            if self._snapshot is None or self._snapshot.version != version:
                self._snapshot = self._rebuilt(version)
            return self._snapshot
        finally:
            self._lock.release()

    def _rebuilt(self, version: int) -> Snapshot:
        """A new snapshot from the database; with the database down, the one this process has,
        else the last one kept in Redis, else UNAVAILABLE (never an exception: decide answers)."""
        try:
            return snapshot_build(version)
        except DatabaseError:
            self._database_retry_at = time.monotonic() + DATABASE_RETRY_SECONDS
            logger.warning("snapshot: database unavailable, serving the last known snapshot")
        if self._snapshot is not None and self._snapshot.available:
            return self._snapshot
        try:
            kept = snapshot_from_redis()
        except redis.RedisError:
            kept = None
        return kept if kept is not None else UNAVAILABLE

    def reset(self) -> None:
        self._snapshot = None
        self._checked_at = 0.0
        self._database_retry_at = 0.0


holder = SnapshotHolder()
