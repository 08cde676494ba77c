"""`/api/v1/experiments`: create, start, stop, read experiments and their results (JSON, CSV).

Secret API keys or staff only. Every refusal is a 4xx in the project's error shape naming the
field; results are read from the stored snapshots (computed by beat), never computed here.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import ModelPermissionByRole
from content.models import Placement, Variant
from core.conditional import (
    ETAG_HEADER,
    IF_MATCH,
    PRECONDITION_FAILED,
    PRECONDITION_REQUIRED,
    ErrorSerializer,
    etag_of,
    precondition_problem,
    write_precondition,
)
from core.errors import Conflict, InvalidInput, NotFound

from .. import stats
from ..lifecycle import (
    ArmSpec,
    arm_specs,
    experiment_create,
    experiment_create_factorial,
    experiment_set_status,
    experiment_update,
)
from ..models import Experiment, ExperimentStatus, Metric
from ..revisions import SETUP_FIELDS, experiment_recorded, experiment_state, setup_state
from ..selectors import results_history, results_latest
from .serializers import (
    ExperimentCreateSerializer,
    ExperimentOutputSerializer,
    ExperimentUpdateSerializer,
    PlanInputSerializer,
    PlanOutputSerializer,
    ResultsSerializer,
    StatusSerializer,
)

MAX_LIST = 200


def _validation_response(exc: DjangoValidationError) -> Response:
    errors = [
        {"field": field, "message": message}
        for field, messages in exc.message_dict.items()
        for message in messages
    ]
    return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)


def _author(request) -> str:
    return request.user.get_username()


def _state_tag(state: dict[str, Any]) -> str:
    """The ETag of an experiment state: its setup, arms, metric links and lifecycle (what a
    revision keeps), so that a change from the admin changes it too."""
    return etag_of(experiment_recorded(state))


def _tagged(experiment: Experiment, code: int = status.HTTP_200_OK) -> Response:
    fresh = _experiment(experiment.key) or experiment
    return Response(
        ExperimentOutputSerializer(fresh).data,
        status=code,
        headers={"ETag": _state_tag(experiment_state(fresh))},
    )


WRITE_ERRORS = {
    400: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    412: PRECONDITION_FAILED,
    428: PRECONDITION_REQUIRED,
}
EXPERIMENT_PUT_EXAMPLE = OpenApiExample(
    "Replace the setup (If-Match required)",
    value={
        "name": "Hero test",
        "placement": "hero",
        "coverage": 0.5,
        "sticky": True,
        "arms": [
            {"key": "control", "variant": "hero-a", "is_control": True, "weight": 1},
            {"key": "bold", "variant": "hero-b", "weight": 3},
        ],
        "metrics": [{"metric": "purchase", "role": "primary"}],
    },
    request_only=True,
)
EXPERIMENT_PATCH_EXAMPLE = OpenApiExample(
    "Change the coverage (If-Match required)", value={"coverage": 0.25}, request_only=True
)
OPTIONAL_IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Optional: the ETag of your last read; a stale one answers 412.",
)


def _experiment(key: str) -> Experiment | None:
    return (
        Experiment.objects.select_related("placement", "rollout_arm")
        .prefetch_related("arms__variant", "arms__extra_variants", "extra_placements")
        .filter(key=key)
        .first()
    )


class _Base(APIView):
    # A secret key or a staff session whose role holds the experiment permission of the action
    # (view for reads; add/change for writes): an Analyst reads experiments and cannot run them.
    permission_classes = [ModelPermissionByRole]
    permission_model = Experiment
    publishable_key_allowed = False


class ExperimentListView(_Base):
    @extend_schema(responses=ExperimentOutputSerializer(many=True))
    def get(self, request):
        experiments = (
            Experiment.objects.select_related("placement", "rollout_arm")
            .prefetch_related("arms__variant", "arms__extra_variants", "extra_placements")
            .order_by("-created_at")[:MAX_LIST]
        )
        return Response(ExperimentOutputSerializer(experiments, many=True).data)

    @extend_schema(
        request=ExperimentCreateSerializer,
        responses={201: ExperimentOutputSerializer},
        parameters=[ETAG_HEADER],
    )
    def post(self, request):
        serializer = ExperimentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "factors" in data:
            return self._create_factorial(data)
        placement = Placement.objects.filter(key=data["placement"]).first()
        if placement is None:
            raise InvalidInput(f"No placement {data['placement']!r}.", field="placement")
        if Experiment.objects.filter(key=data["key"]).exists():
            raise InvalidInput(f"An experiment {data['key']!r} exists already.", field="key")
        variants = {v.key: v for v in Variant.objects.filter(placement=placement)}
        arms = []
        for index, arm in enumerate(data["arms"]):
            variant = variants.get(arm["variant"])
            if variant is None:
                raise InvalidInput(
                    f"No variant {arm['variant']!r} on placement {placement.key}.",
                    field=f"arms[{index}].variant",
                )
            arms.append(
                ArmSpec(arm["key"], variant, arm["weight"], arm["is_control"], arm.get("name", ""))
            )
        links = _metric_links(data)
        fields = _fields(data)
        fields["placement"] = placement
        try:
            experiment = experiment_create(
                fields=fields, arms=arms, metrics=links, author=_author(self.request)
            )
        except DjangoValidationError as exc:
            return _validation_response(exc)
        return _tagged(experiment, status.HTTP_201_CREATED)

    def _create_factorial(self, data) -> Response:
        factors = []
        for index, factor in enumerate(data["factors"]):
            placement = Placement.objects.filter(key=factor["placement"]).first()
            if placement is None:
                raise InvalidInput(
                    f"No placement {factor['placement']!r}.", field=f"factors[{index}].placement"
                )
            variants = {v.key: v for v in Variant.objects.filter(placement=placement)}
            missing = [k for k in factor["variants"] if k not in variants]
            if missing:
                raise InvalidInput(
                    f"No variant {missing[0]!r} on placement {placement.key}.",
                    field=f"factors[{index}].variants",
                )
            factors.append((placement, [variants[k] for k in factor["variants"]]))
        if len({p.pk for p, _ in factors}) != len(factors):
            raise InvalidInput("Each factor needs its own placement.", field="factors")
        if Experiment.objects.filter(key=data["key"]).exists():
            raise InvalidInput(f"An experiment {data['key']!r} exists already.", field="key")
        links = _metric_links(data)
        try:
            experiment = experiment_create_factorial(
                fields=_fields(data), factors=factors, metrics=links, author=_author(self.request)
            )
        except DjangoValidationError as exc:
            return _validation_response(exc)
        return _tagged(experiment, status.HTTP_201_CREATED)


def _fields(data) -> dict:
    fields = {
        name: data[name]
        for name in ("key", "name", "coverage", "sticky", "layer_start", "layer_end", "engine")
    }
    fields.update(
        cuped=data["cuped"],
        hypothesis=data.get("hypothesis", ""),
        seed=data.get("seed", ""),
        layer=data.get("layer", ""),
        planned_sample_size=data.get("planned_sample_size"),
    )
    return fields


def _metric_links(data) -> list:
    links = []
    metric_keys = [m["metric"] for m in data.get("metrics", [])]
    known = {m.key: m for m in Metric.objects.filter(key__in=metric_keys)}
    for index, link in enumerate(data.get("metrics", [])):
        metric = known.get(link["metric"])
        if metric is None:
            raise InvalidInput(f"No metric {link['metric']!r}.", field=f"metrics[{index}].metric")
        links.append((metric, link["role"]))
    if len(set(metric_keys)) != len(metric_keys):
        raise InvalidInput("A metric may be attached once.", field="metrics")
    return links


# The fields of ExperimentUpdateSerializer set on the experiment as they are, and the value a
# PUT gives those it leaves out (the others have their default in the serializer).
_UPDATED_FIELDS = (
    "name",
    "hypothesis",
    "coverage",
    "seed",
    "sticky",
    "layer",
    "layer_start",
    "layer_end",
    "engine",
    "cuped",
    "planned_sample_size",
)
_PUT_DEFAULTS = {"hypothesis": "", "seed": "", "layer": "", "planned_sample_size": None}


def _update_inputs(experiment: Experiment, data: dict):
    """(fields, arms or None, metric links) of a PUT body (a PATCH is made one), resolved
    against the database; InvalidInput naming the field for a key that names nothing."""
    if "key" in data and data["key"] != experiment.key:
        raise InvalidInput("The key of an experiment cannot change.", field="key")
    fields = {**_PUT_DEFAULTS, **{name: data[name] for name in _UPDATED_FIELDS if name in data}}
    placement = experiment.placement
    if "placement" in data:
        found = Placement.objects.filter(key=data["placement"]).first()
        if found is None:
            raise InvalidInput(f"No placement {data['placement']!r}.", field="placement")
        placement = found
    fields["placement"] = placement
    arms = None
    if "arms" in data:
        variants = {v.key: v for v in Variant.objects.filter(placement=placement)}
        extra_placements = list(experiment.extra_placements.all())
        extras: dict[str, list[Variant]] = {}
        for extra in Variant.objects.filter(placement__in=extra_placements):
            extras.setdefault(extra.key, []).append(extra)
        arms = []
        for index, arm in enumerate(data["arms"]):
            variant = variants.get(arm["variant"])
            if variant is None:
                raise InvalidInput(
                    f"No variant {arm['variant']!r} on placement {placement.key}.",
                    field=f"arms[{index}].variant",
                )
            chosen: list[Variant] = []
            for key in arm.get("extra_variants", []):
                if key not in extras:
                    raise InvalidInput(
                        f"No variant {key!r} on the extra placements.",
                        field=f"arms[{index}].extra_variants",
                    )
                chosen.extend(extras[key])
            # A PATCH's nested items get no defaults from the serializer (partial): the same
            # ones as a PUT's are applied here.
            arms.append(
                ArmSpec(
                    arm["key"],
                    variant,
                    arm.get("weight", 1.0),
                    arm.get("is_control", False),
                    arm.get("name", ""),
                    tuple(chosen),
                )
            )
    return fields, arms, _metric_links(data)


def _input_of(experiment: Experiment) -> dict[str, Any]:
    """The experiment as a PUT body (what ExperimentUpdateSerializer reads)."""
    return {
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "placement": experiment.placement.key,
        "coverage": experiment.coverage,
        "seed": experiment.seed,
        "sticky": experiment.sticky,
        "layer": experiment.layer,
        "layer_start": experiment.layer_start,
        "layer_end": experiment.layer_end,
        "engine": experiment.engine,
        "cuped": experiment.cuped,
        "planned_sample_size": experiment.planned_sample_size,
        "arms": [
            {
                "key": arm.key,
                "name": arm.name,
                "variant": arm.variant.key,
                "weight": arm.weight,
                "is_control": arm.is_control,
                "extra_variants": [v.key for v in arm.extra_variants.all()],
            }
            for arm in experiment.arms.all()
        ],
        "metrics": [
            {"metric": link.metric.key, "role": link.role}
            for link in experiment.experiment_metrics.select_related("metric")
        ],
    }


def _wanted_tag(experiment: Experiment, fields: dict, arms, links) -> str:
    """The ETag the experiment would have after this change (nothing written)."""
    values = {name: getattr(experiment, name) for name in SETUP_FIELDS}
    candidate = Experiment(key=experiment.key, status=experiment.status, **{**values, **fields})
    if arms is None:
        arms = arm_specs(
            list(experiment.arms.select_related("variant").prefetch_related("extra_variants"))
        )
    if links is None:
        links = [
            (link.metric, link.role)
            for link in experiment.experiment_metrics.select_related("metric")
        ]
    state = setup_state(
        experiment=candidate,
        arms=arms,
        metrics=links,
        extra_placements=list(experiment.extra_placements.all()),
        rollout_arm_key=experiment.rollout_arm.key if experiment.rollout_arm is not None else None,
    )
    return _state_tag(state)


def _experiment_or_404(key: str) -> Experiment:
    experiment = _experiment(key)
    if experiment is None:
        raise NotFound(f"No experiment {key!r}.", field="key")
    return experiment


class ExperimentDetailView(_Base):
    @extend_schema(
        responses={200: ExperimentOutputSerializer, 404: ErrorSerializer},
        parameters=[ETAG_HEADER],
        summary="Read an experiment (the answer carries its ETag)",
    )
    def get(self, request, key: str):
        return _tagged(_experiment_or_404(key))

    @extend_schema(
        request=ExperimentUpdateSerializer,
        responses={200: ExperimentOutputSerializer, **WRITE_ERRORS},
        parameters=[IF_MATCH, ETAG_HEADER],
        examples=[EXPERIMENT_PUT_EXAMPLE],
        summary="Replace an experiment's setup (idempotent; If-Match required)",
    )
    def put(self, request, key: str):
        return self._update(request, key, partial=False)

    @extend_schema(
        request=ExperimentUpdateSerializer,
        responses={200: ExperimentOutputSerializer, **WRITE_ERRORS},
        parameters=[IF_MATCH, ETAG_HEADER],
        examples=[EXPERIMENT_PATCH_EXAMPLE],
        summary="Change some of an experiment's setup (If-Match required)",
    )
    def patch(self, request, key: str):
        return self._update(request, key, partial=True)

    def _update(self, request, key: str, *, partial: bool):
        experiment = _experiment_or_404(key)
        data = request.data
        if partial and isinstance(data, dict):
            # A PATCH is the current setup with the fields sent replaced, validated whole (so
            # that an arm or metric link sent is checked as completely as in a PUT).
            data = {**_input_of(experiment), **data}
        serializer = ExperimentUpdateSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        fields, arms, links = _update_inputs(experiment, serializer.validated_data)
        current_tag = _state_tag(experiment_state(experiment))
        wanted_tag = _wanted_tag(experiment, fields, arms, links)
        problem = write_precondition(request, current_tag=current_tag, wanted_tag=wanted_tag)
        if problem is not None:
            return problem
        if wanted_tag != current_tag:
            try:
                experiment_update(
                    experiment=experiment,
                    fields=fields,
                    arms=arms,
                    metrics=links,
                    author=_author(request),
                    comment="Saved through the API",
                )
            except DjangoValidationError as exc:
                return _validation_response(exc)
        return _tagged(experiment)

    @extend_schema(
        responses={204: None, 409: ErrorSerializer, **WRITE_ERRORS},
        parameters=[IF_MATCH],
        summary="Delete a draft or stopped experiment, with its exposures and results "
        "(If-Match required)",
    )
    def delete(self, request, key: str):
        experiment = _experiment_or_404(key)
        problem = precondition_problem(request, _state_tag(experiment_state(experiment)))
        if problem is not None:
            return problem
        if experiment.status in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED):
            raise Conflict(
                f"The experiment is {experiment.status}: stop it before deleting it.",
                field="status",
            )
        experiment.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class _StatusView(_Base):
    target: str = ""
    permission_action = "change"  # starting, pausing or stopping changes the experiment

    @extend_schema(
        request=StatusSerializer,
        responses={200: ExperimentOutputSerializer, 412: PRECONDITION_FAILED},
        parameters=[OPTIONAL_IF_MATCH, ETAG_HEADER],
    )
    def post(self, request, key: str):
        experiment = _experiment_or_404(key)
        if request.headers.get("If-Match") is not None:
            problem = precondition_problem(request, _state_tag(experiment_state(experiment)))
            if problem is not None:
                return problem
        serializer = StatusSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        rollout = None
        rollout_key = serializer.validated_data.get("rollout_arm")
        if rollout_key:
            if self.target != ExperimentStatus.STOPPED:
                raise InvalidInput("Only a stop can roll out an arm.", field="rollout_arm")
            rollout = experiment.arms.filter(key=rollout_key).first()
            if rollout is None:
                raise InvalidInput(f"No arm {rollout_key!r}.", field="rollout_arm")
        try:
            experiment_set_status(
                experiment=experiment,
                status=self.target,
                rollout_arm=rollout,
                author=_author(request),
            )
        except DjangoValidationError as exc:
            return _validation_response(exc)
        return _tagged(experiment)


class ExperimentStartView(_StatusView):
    target = ExperimentStatus.RUNNING


class ExperimentPauseView(_StatusView):
    target = ExperimentStatus.PAUSED


class ExperimentStopView(_StatusView):
    target = ExperimentStatus.STOPPED


class ExperimentResultsView(_Base):
    @extend_schema(responses=ResultsSerializer)
    def get(self, request, key: str):
        experiment = Experiment.objects.filter(key=key).first()
        if experiment is None:
            raise NotFound(f"No experiment {key!r}.", field="key")
        latest = results_latest(experiment=experiment)
        return Response(
            {
                "experiment": experiment.key,
                "computed_at": latest.computed_at if latest else None,
                "users": latest.users if latest else 0,
                "srm_p_value": latest.srm_p_value if latest else None,
                "data": latest.data if latest else None,
                "history": results_history(experiment=experiment),
            }
        )


CSV_COLUMNS = [
    "metric",
    "role",
    "arm",
    "users",
    "sum",
    "mean",
    "relative_lift",
    "relative_ci_low",
    "relative_ci_high",
    "absolute_lift",
    "absolute_ci_low",
    "absolute_ci_high",
    "p_value",
    "chance_to_win",
    "cuped",
]


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # Spreadsheet formula injection: a text cell starting with these is shown as text.
    return (
        "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(text) else text
    )


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def results_csv_rows(data: dict) -> list[list[str]]:
    rows = []
    for metric in data.get("metrics", []):
        for arm in metric["arms"]:
            entry = metric["estimates"].get(arm["arm"], {})
            for label in ("plain", "cuped"):
                est = entry.get(label)
                if est is None and (label == "cuped" or entry):
                    continue
                rel = (est or {}).get("relative", {})
                ab = (est or {}).get("absolute", {})
                rows.append(
                    [
                        _cell(v)
                        for v in (
                            metric["key"],
                            metric["role"],
                            arm["arm"],
                            arm["n"],
                            arm["sum"],
                            arm["mean"],
                            rel.get("expected"),
                            rel.get("ci_low"),
                            rel.get("ci_high"),
                            ab.get("expected"),
                            ab.get("ci_low"),
                            ab.get("ci_high"),
                            rel.get("p_value"),
                            rel.get("chance_to_win"),
                            label == "cuped",
                        )
                    ]
                )
    return rows


class ExperimentResultsCsvView(_Base):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, key: str):
        experiment = Experiment.objects.filter(key=key).first()
        if experiment is None:
            raise NotFound(f"No experiment {key!r}.", field="key")
        latest = results_latest(experiment=experiment)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(results_csv_rows(latest.data if latest else {}))
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{experiment.key}-results.csv"'
        return response


class ExperimentPlanView(_Base):
    """Planning: the minimum detectable relative effect for a size, or the size for an effect."""

    @extend_schema(parameters=[PlanInputSerializer], responses=PlanOutputSerializer)
    def get(self, request):
        serializer = PlanInputSerializer(data=request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        binary = "std" not in data
        mean = data["baseline"]
        variance = mean * (1 - mean) if binary else data["std"] ** 2
        common = {
            "mean": mean,
            "variance": variance,
            "power": data["power"],
            "alpha": data["alpha"],
            "binary": binary,
        }
        out = {}
        if "users_per_arm" in data:
            out["minimum_detectable_effect"] = stats.minimum_detectable_effect(
                n_per_arm=data["users_per_arm"], **common
            )
        if "effect" in data:
            try:
                out["users_per_arm"] = stats.sample_size(effect=data["effect"], **common)
            except ValueError as exc:
                raise InvalidInput(str(exc), field="effect") from exc
        return Response(out)
