"""Small builders for test data (plain functions: explicit beats magic)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from content.models import Placement, Variant, VariantStatus
from experiments.models import Arm, Experiment, ExperimentStatus
from segments import services
from segments.models import Segment, SegmentKind
from segments.services import IngestResult, StoreResult


def make_placement(key: str = "hero", default_html: str = "<p>default</p>") -> Placement:
    placement = Placement.objects.create(key=key, name=key.title())
    default = Variant.objects.create(
        placement=placement,
        key="default",
        name="Default",
        status=VariantStatus.LIVE,
        priority=1000,
        template=default_html,
    )
    placement.default_variant = default
    placement.save()
    return placement


def make_variant(
    placement: Placement,
    key: str,
    *,
    condition: dict[str, Any] | None = None,
    priority: int = 10,
    template: str | None = None,
    status: str = VariantStatus.LIVE,
    **extra: Any,
) -> Variant:
    return Variant.objects.create(
        placement=placement,
        key=key,
        name=key,
        status=status,
        priority=priority,
        condition=condition or {},
        template=template if template is not None else f"<p>{key}</p>",
        **extra,
    )


def make_segment(key: str, condition: dict[str, Any]) -> Segment:
    return Segment.objects.create(
        key=key, name=key, kind=SegmentKind.CONDITION, condition=condition
    )


def make_experiment(placement: Placement, key: str = "exp", arms: int = 2) -> Experiment:
    experiment = Experiment.objects.create(
        key=key, name=key, placement=placement, status=ExperimentStatus.RUNNING
    )
    for index in range(arms):
        variant = make_variant(placement, f"{key}-arm{index}", priority=500 + index)
        Arm.objects.create(
            experiment=experiment,
            key=f"arm{index}",
            name=f"arm{index}",
            variant=variant,
            position=index,
            is_control=index == 0,
        )
    return experiment


def event(visitor: str, type_: str = "page_view", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(fields.pop("event_id", uuid.uuid4())),
        "visitor": visitor,
        "type": type_,
        "occurred_at": fields.pop("occurred_at", datetime.now(UTC).isoformat()),
        **fields,
    }


def ingest(*, max_events: int) -> IngestResult:
    """Both ingestion stages, as the worker runs them: stage 1's result, aggregates current."""
    result = services.events_ingest_pending(max_events=max_events)
    aggregate_all()
    return result


def store(*, events: list[dict[str, Any]]) -> StoreResult:
    """`events_store` followed by the aggregation stage (what the worker does next)."""
    result = services.events_store(events=events)
    aggregate_all()
    return result


def aggregate_all() -> int:
    """Run the aggregation stage until nothing is pending; returns the events folded in."""
    result = services.profiles_aggregate_all_pending()
    assert not result.skipped_locked, "the aggregation lock was held by someone else"
    return result.events


def admin_change_form_data(response) -> dict[str, Any]:
    """The POST body an admin change page would send as rendered (main form and inline
    formsets; JSON values as the text their widgets show)."""
    import json

    data: dict[str, Any] = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        data.update({management.add_prefix(n): management[n].value() for n in management.fields})
        forms.extend(formset.forms)
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if isinstance(value, dict):  # a JSON field (lists are multiple choices)
                value = json.dumps(value)
            if value is not None and value is not False:  # (0 is a value: not "in (None, False)")
                data[form.add_prefix(name)] = value
    return data
