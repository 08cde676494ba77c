"""Writes of the analysis app: create an attribute analysis (and enqueue it), run it."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from segments.engine.analysis import analyse_attributes
from segments.engine.features import spec_for_key
from segments.engine.propensity import Target

from .models import AttributeAnalysis, RunState
from .selectors import feature_matrix_from_db, trait_kinds

logger = logging.getLogger(__name__)


def attribute_analysis_create(
    *,
    target: dict[str, Any],
    attributes: list[str],
    as_of: dt.datetime,
    threshold: float,
    actor: str,
) -> AttributeAnalysis:
    """Record a (validated) analysis and enqueue its run once the record is committed."""
    from . import tasks

    analysis = AttributeAnalysis.objects.create(
        target=target,
        attributes=attributes,
        as_of=as_of,
        threshold=threshold,
        created_by=actor[:150],
    )
    transaction.on_commit(lambda: tasks.attribute_analysis_run.delay(analysis.pk))
    return analysis


def attribute_analysis_run(*, analysis_id: int, chunk: int | None = None) -> AttributeAnalysis:
    """Build the matrix in chunks, analyse it, store the results (FAILED with the reason)."""
    analysis = AttributeAnalysis.objects.get(pk=analysis_id)
    if analysis.status == RunState.SUCCEEDED:
        return analysis  # idempotent: a redelivered task does not redo a finished run
    started = time.monotonic()
    AttributeAnalysis.objects.filter(pk=analysis.pk).update(
        status=RunState.RUNNING, started_at=timezone.now(), profiles=0, chunks=0, errors=[]
    )

    def progress(profiles: int, chunks: int) -> None:
        AttributeAnalysis.objects.filter(pk=analysis.pk).update(profiles=profiles, chunks=chunks)

    try:
        kinds = trait_kinds()
        specs = [spec_for_key(k, kinds) for k in analysis.attributes]
        target = analysis.target
        event_target = None
        if target.get("event_type"):
            event_target = Target(
                event_type=target["event_type"],
                window_days=float(target["window_days"]),
                name=target.get("name") or None,
                category=target.get("category") or None,
                absence=bool(target.get("absence")),
            )
        kwargs = {"chunk": chunk} if chunk else {}
        fm, y = feature_matrix_from_db(
            as_of=analysis.as_of,
            specs=specs,
            target=event_target,
            trait_target=None if event_target else target.get("trait"),
            progress=progress,
            **kwargs,
        )
        if not len(fm.profile_ids):
            raise ValueError("no profile has an event before as_of")
        results = analyse_attributes(fm, y, threshold=analysis.threshold)
    except ValueError as exc:
        return _finish(analysis, started, RunState.FAILED, errors=[str(exc)[:500]])
    except Exception as exc:  # recorded, then raised for the task's logs and retries
        _finish(analysis, started, RunState.FAILED, errors=[f"{type(exc).__name__}: {exc}"[:500]])
        raise
    return _finish(analysis, started, RunState.SUCCEEDED, results=results, profiles=len(y))


def _finish(analysis, started, status, *, errors=None, results=None, profiles=None):
    analysis.refresh_from_db()
    analysis.status = status
    analysis.finished_at = timezone.now()
    analysis.duration_ms = int((time.monotonic() - started) * 1000)
    if errors:
        analysis.errors = errors
    if results is not None:
        analysis.results = results
    if profiles is not None:
        analysis.profiles = profiles
    analysis.save()
    logger.info("attribute analysis %s %s in %s ms", analysis.pk, status, analysis.duration_ms)
    return analysis
