"""Celery tasks of the analysis app: thin (an id in, a service call)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(autoretry_for=(OperationalError,), retry_backoff=10, retry_kwargs={"max_retries": 3})
def attribute_analysis_run(analysis_id: int) -> dict[str, object]:
    analysis = services.attribute_analysis_run(analysis_id=analysis_id)
    return {"analysis": analysis.pk, "status": analysis.status, "profiles": analysis.profiles}
