"""Model segments' services: propensity and cluster runs, model files, scores on profiles.

Called by the kinds in analysis.kinds inside a segment run (segments.runs), which swaps the
membership atomically and records the run. Scores go on the profile row under
`scores.scores.<segment key>` (conditions read `profile.scores.<segment key>`) and the cached
documents of the profiles whose score changed are rewritten here, in batches.

Ordering caveat: scores are written (each batch atomically) before the run swaps the
membership, so for the few seconds between the two a decision may see a new score with the old
membership. Both converge within the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from profiles.models import Profile
from segments.engine import clustering
from segments.engine.features import DAY, spec_for_key
from segments.engine.propensity import (
    PropensityModel,
    Split,
    Target,
    membership,
    train,
)
from segments.models import RunStatus, Segment, SegmentMembership, SegmentRun

from .models import ModelFile
from .selectors import feature_matrix_from_db, trait_kinds

logger = logging.getLogger(__name__)

NAMESPACE = "scores"
_BATCH = 10_000
# Scores are rounded so that a re-scoring that changes nothing visible rewrites no document.
_DIGITS = 4


# --- scores on profiles ----------------------------------------------------------------------


def profile_model_scores_write(*, segment_key: str, values: dict[int, float | int | None]) -> int:
    """Set (a number) or remove (None) `scores.<segment_key>` on these profiles, in batches."""
    table = connection.ops.quote_name(Profile._meta.db_table)
    items = list(values.items())
    for start in range(0, len(items), _BATCH):
        batch = items[start : start + _BATCH]
        sets = [(pid, v) for pid, v in batch if v is not None]
        removes = [pid for pid, v in batch if v is None]
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                if sets:
                    cursor.execute(
                        f"UPDATE {table} AS p SET scores = jsonb_set(coalesce(p.scores, '{{}}'),"
                        " '{scores}', coalesce(p.scores->'scores', '{}'::jsonb)"
                        " || jsonb_build_object(%s::text, v.value))"
                        " FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, value jsonb)"
                        " WHERE p.id = v.id",
                        [segment_key, json.dumps([{"id": i, "value": v} for i, v in sets])],
                    )
                if removes:
                    cursor.execute(
                        f"UPDATE {table} SET scores = scores #- %s"
                        " WHERE id = ANY(string_to_array(%s, ',')::bigint[])",
                        ["{scores," + segment_key + "}", ",".join(map(str, removes))],
                    )
            else:
                path = f'$.scores."{segment_key}"'
                if sets:
                    cursor.executemany(
                        f"UPDATE {table} SET scores = json_set(coalesce(scores, '{{}}'), %s,"
                        " json(%s)) WHERE id = %s",
                        [(path, json.dumps(v), i) for i, v in sets],
                    )
                if removes:
                    cursor.executemany(
                        f"UPDATE {table} SET scores = json_remove(scores, %s) WHERE id = %s",
                        [(path, i) for i in removes],
                    )
    return len(items)


def profile_model_scores_read(*, segment_key: str, profile_ids: Iterable[int] | None = None):
    """{profile id: score} of the profiles holding a score of this segment."""
    qs = Profile.objects.filter(**{f"scores__{NAMESPACE}__has_key": segment_key}).order_by()
    if profile_ids is not None:
        qs = qs.filter(pk__in=list(profile_ids))
    out: dict[int, Any] = {}
    for pid, scores in qs.values_list("pk", "scores").iterator(chunk_size=5000):
        out[pid] = ((scores or {}).get(NAMESPACE) or {}).get(segment_key)
    return out


def scores_replace(*, segment_key: str, new: dict[int, float | int]) -> list[int]:
    """Make the segment's scores exactly `new` (others removed); rewrite changed documents."""
    from profiles.services import profile_cache_write

    old = profile_model_scores_read(segment_key=segment_key)
    changes: dict[int, float | int | None] = {pid: v for pid, v in new.items() if old.get(pid) != v}
    changes.update(dict.fromkeys(old.keys() - new.keys()))
    profile_model_scores_write(segment_key=segment_key, values=changes)
    changed = sorted(changes)
    for start in range(0, len(changed), _BATCH):
        profile_cache_write(profile_ids=changed[start : start + _BATCH])
    return changed


# --- model files -----------------------------------------------------------------------------


def model_file_save(
    *, segment_key: str, kind: str, data: bytes, metrics: dict, active: bool
) -> ModelFile:
    """Store a model file (Django storage) as the segment's next version."""
    last = ModelFile.objects.filter(segment_key=segment_key).order_by("-version").first()
    version = (last.version if last else 0) + 1
    record = ModelFile(
        segment_key=segment_key,
        kind=kind,
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        metrics=metrics,
    )
    record.file.save(f"{segment_key}-v{version}.pkl", ContentFile(data), save=False)
    with transaction.atomic():
        if active:
            ModelFile.objects.filter(segment_key=segment_key, active=True).update(active=False)
        record.active = active
        record.save()
    return record


def model_file_active(*, segment_key: str) -> ModelFile | None:
    return ModelFile.objects.filter(segment_key=segment_key, active=True).first()


def model_load(record: ModelFile) -> PropensityModel:
    with default_storage.open(record.file.name, "rb") as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != record.sha256:
        raise ValueError(f"model file {record.file.name} does not match its checksum")
    return PropensityModel.loads(data)


def model_files_delete(*, segment_key: str) -> int:
    """Remove a segment's model files from storage and their records (segment deleted)."""
    count = 0
    for record in ModelFile.objects.filter(segment_key=segment_key):
        if record.file.name and default_storage.exists(record.file.name):
            default_storage.delete(record.file.name)
        record.delete()
        count += 1
    return count


# --- runs ------------------------------------------------------------------------------------


def _current_trigger(segment: Segment) -> str:
    run = SegmentRun.objects.filter(segment=segment, status=RunStatus.RUNNING).first()
    return run.trigger if run else "schedule"


def _as_of(config: dict) -> dt.datetime:
    value = config.get("as_of")
    return dt.datetime.fromisoformat(value) if value else timezone.now()


def _progress_adapter(progress: Callable[[int], None]) -> tuple[Callable[[int, int], None], list]:
    done = [0]

    def on_chunk(profiles: int, chunks: int) -> None:
        progress(done[0] + profiles)

    return on_chunk, done


def _specs(config: dict):
    kinds = trait_kinds()
    return [spec_for_key(k, kinds) for k in config["features"]]


def _retrain_due(segment: Segment, config: dict) -> bool:
    """Admin, API and command runs retrain; scheduled ones only every `retrain_hours`."""
    if _current_trigger(segment) != "schedule":
        return True
    active = model_file_active(segment_key=segment.key)
    if active is None:
        return True
    return timezone.now() - active.created_at >= dt.timedelta(hours=config["retrain_hours"])


def propensity_compute(segment: Segment, *, progress: Callable[[int], None]):
    """Train (time split or holdout), gate on the recency baseline, score, choose members."""
    from segments.kinds import KindResult

    config = segment.config
    t = config["target"]
    target = Target(
        event_type=t["event_type"],
        window_days=float(t["window_days"]),
        name=t.get("name") or None,
        category=t.get("category") or None,
        absence=bool(t.get("absence")),
    )
    specs = _specs(config)
    now = _as_of(config)
    on_chunk, done = _progress_adapter(progress)
    window = dt.timedelta(days=target.window_days)
    metrics: dict[str, Any] = {"kind": "propensity", "as_of": now.isoformat()}

    if _retrain_due(segment, config):
        if config["validation"] == "time":
            t2 = now - window
            t1 = t2 - window
            train_fm, y_train = feature_matrix_from_db(
                as_of=t1, specs=specs, target=target, progress=on_chunk
            )
            done[0] += len(train_fm.profile_ids)
            valid_fm, y_valid = feature_matrix_from_db(
                as_of=t2, specs=specs, target=target, progress=on_chunk
            )
            done[0] += len(valid_fm.profile_ids)
            split = Split(
                "time",
                train_fm,
                y_train,
                valid_fm,
                y_valid,
                specs,
                {"cutoff": t1.isoformat(), "validation_cutoff": t2.isoformat()},
            )
        else:
            from segments.engine.propensity import _check_classes

            fm, y = feature_matrix_from_db(
                as_of=now - window, specs=specs, target=target, progress=on_chunk
            )
            done[0] += len(fm.profile_ids)
            _check_classes(y, "labels")
            from sklearn.model_selection import train_test_split

            tr, va = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0, stratify=y)
            split = Split(
                "holdout",
                fm.take(tr),
                y[tr],
                fm.take(va),
                y[va],
                specs,
                {"cutoff": (now - window).isoformat(), "holdout": 0.3},
            )
        model, report = train(split, config["model"], force=bool(config.get("force")))
        record = model_file_save(
            segment_key=segment.key,
            kind="propensity",
            data=model.dumps(),
            metrics={k: report[k] for k in ("metrics", "baseline", "beats_baseline")},
            active=report["activated"],
        )
        metrics.update(report)
        metrics["model_version"] = record.version
        metrics["model_file"] = record.file.name
        metrics["retrained"] = True
    else:
        metrics["retrained"] = False
        metrics["activated"] = True

    active = model_file_active(segment_key=segment.key)
    metrics["scoring_version"] = active.version if active else None
    if not metrics.get("activated") or active is None:
        # Flagged, not activated: the membership and scores in force stay as they are.
        current = dict(
            SegmentMembership.objects.filter(segment=segment).values_list("profile_id", "score")
        )
        metrics["kept_previous"] = True
        return KindResult(members=set(current), scanned=done[0], scores=current, metrics=metrics)

    model = model_load(active)
    fm, _ = feature_matrix_from_db(as_of=now, specs=model.specs, progress=on_chunk)
    scores = np.round(model.score(fm), _DIGITS) if len(fm.profile_ids) else np.zeros(0)
    rule = config["membership"]
    chosen = membership(scores, threshold=rule.get("threshold"), top_share=rule.get("top_share"))
    ids = fm.profile_ids.tolist()
    values = {pid: float(s) for pid, s in zip(ids, scores.tolist(), strict=True)}
    changed = scores_replace(segment_key=segment.key, new=values)
    members = {pid for pid, m in zip(ids, chosen.tolist(), strict=True) if m}
    metrics["scored"] = len(ids)
    metrics["scores_changed"] = len(changed)
    metrics["score_histogram"] = np.histogram(scores, bins=10, range=(0, 1))[0].tolist()
    return KindResult(
        members=members,
        scanned=done[0] + len(ids),
        scores={pid: values[pid] for pid in members},
        metrics=metrics,
    )


def cluster_compute(segment: Segment, *, progress: Callable[[int], None]):
    """Cluster the profiles (or, between retrains, assign new ones); one member segment per
    cluster; the parent's members are every clustered profile (noise excluded)."""
    from segments.kinds import KindResult

    config = segment.config
    specs = _specs(config)
    names = [s.key for s in specs]
    now = _as_of(config)
    on_chunk, done = _progress_adapter(progress)
    metrics: dict[str, Any] = {"kind": "cluster", "as_of": now.isoformat()}
    previous = _latest_model(segment)
    if _cluster_retrain_due(segment, config, previous):
        fm, _ = feature_matrix_from_db(as_of=now, specs=specs, progress=on_chunk)
        if len(fm.profile_ids) < 3:
            raise ValueError("fewer than 3 profiles with events: nothing to cluster")
        k_range = tuple(config["k_range"])
        labels, model, report = clustering.cluster(
            fm.numeric_subset(names),
            names,
            method=config["method"],
            scaling=config["scaling"],
            k_range=(k_range[0], min(k_range[1], len(fm.profile_ids) - 1)),
            k=config.get("k"),
            eps=config["eps"],
            min_samples=config["min_samples"],
            seed=0,
        )
        metrics.update(report)
        metrics["model"] = model.to_dict()
        metrics["retrained"] = True
        ids = fm.profile_ids.tolist()
        values = {
            pid: int(lbl)
            for pid, lbl in zip(ids, labels.tolist(), strict=True)
            if lbl != clustering.NOISE
        }
        scores_replace(segment_key=segment.key, new=values)
    else:
        model = clustering.ClusterModel.from_dict(previous["model"])
        metrics.update({k: v for k, v in previous.items() if k not in ("retrained", "as_of")})
        metrics["retrained"] = False
        assigned = cluster_assign_new(segment=segment, model=model, specs=specs, as_of=now)
        metrics["assigned_new"] = assigned
        values = profile_model_scores_read(segment_key=segment.key)
    metrics["children"] = _children_sync(segment, model)
    members = set(values)
    return KindResult(members=members, scanned=done[0] + len(members), scores=None, metrics=metrics)


def _latest_model(segment: Segment) -> dict | None:
    run = (
        SegmentRun.objects.filter(
            segment=segment, status=RunStatus.SUCCEEDED, metrics__retrained=True
        )
        .order_by("-started_at", "-id")
        .first()
    )
    if run is None or not run.metrics.get("model"):
        return None
    return {**run.metrics, "trained_at": run.started_at.isoformat()}


def _cluster_retrain_due(segment, config, previous) -> bool:
    if previous is None or _current_trigger(segment) != "schedule":
        return True
    made = dt.datetime.fromisoformat(previous["trained_at"])
    return timezone.now() - made >= dt.timedelta(hours=config["retrain_hours"])


def cluster_assign_new(
    *, segment: Segment, model, specs, as_of: dt.datetime, limit: int = 200_000
) -> int:
    """Profiles without a cluster of this segment get the nearest one (DBSCAN: none, i.e.
    they stay in the default segment when too far from every core)."""
    missing = list(
        Profile.objects.exclude(**{f"scores__{NAMESPACE}__has_key": segment.key})
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not missing:
        return 0
    fm, _ = feature_matrix_from_db(as_of=as_of, specs=specs, profile_ids=missing)
    if not len(fm.profile_ids):
        return 0
    labels = model.assign(fm.numeric_subset([s.key for s in specs]))
    values = {
        pid: int(lbl)
        for pid, lbl in zip(fm.profile_ids.tolist(), labels.tolist(), strict=True)
        if lbl != clustering.NOISE
    }
    profile_model_scores_write(segment_key=segment.key, values=values)
    from profiles.services import profile_cache_write

    ids = sorted(values)
    for start in range(0, len(ids), _BATCH):
        profile_cache_write(profile_ids=ids[start : start + _BATCH])
    return len(values)


def child_key(parent_key: str, label: int) -> str:
    return f"{parent_key}-c{label}"[:100]


def _children_sync(segment: Segment, model) -> list[dict]:
    """One member segment per cluster (created once; the analyst may rename it), descriptions
    refreshed; member segments of clusters that no longer exist are deactivated. Their runs are
    queued after this run commits."""
    from segments import tasks

    children = []
    wanted = set()
    for label, description in enumerate(model.descriptions):
        key = child_key(segment.key, label)
        wanted.add(key)
        child, created = Segment.objects.get_or_create(
            key=key,
            defaults={
                "name": f"{segment.name}: {description}"[:200],
                "kind": "cluster_member",
                "config": {"parent": segment.key, "label": label},
                "description": description,
            },
        )
        if child.kind != "cluster_member":
            children.append({"key": key, "error": "key taken by another segment"})
            continue
        if not created:
            Segment.objects.filter(pk=child.pk).update(description=description, is_active=True)
        children.append(
            {
                "key": key,
                "label": label,
                "name": child.name,
                "description": description,
                "size": model.sizes[label],
            }
        )
        transaction.on_commit(lambda pk=child.pk: tasks.segment_run.delay(pk, "cluster-parent"))
    Segment.objects.filter(kind="cluster_member", config__parent=segment.key).exclude(
        key__in=wanted
    ).update(is_active=False)
    return children


def cluster_member_compute(segment: Segment, *, progress: Callable[[int], None]):
    """The profiles whose cluster (of the parent segment) is this segment's label."""
    from segments.kinds import KindResult

    parent_key = segment.config["parent"]
    label = int(segment.config["label"])
    scores = profile_model_scores_read(segment_key=parent_key)
    members = {pid for pid, v in scores.items() if v == label}
    progress(len(scores))
    return KindResult(
        members=members, scanned=len(scores), metrics={"parent": parent_key, "label": label}
    )


__all__ = ["DAY", "cluster_compute", "cluster_member_compute", "propensity_compute"]
