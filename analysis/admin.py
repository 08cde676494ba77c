"""Admin of attribute analyses: a form that queues a run, and a page of charts per run."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from . import tasks
from .models import AttributeAnalysis, ModelSegment, RunState
from .serializers import AttributeAnalysisRequestSerializer


class AttributeAnalysisForm(forms.ModelForm):
    """Validated by the API's serializer, so the admin and the API refuse the same input."""

    class Meta:
        model = AttributeAnalysis
        fields = ["target", "attributes", "as_of", "threshold"]

    def clean(self):
        data = super().clean()
        payload = {
            "target": data.get("target"),
            "attributes": data.get("attributes"),
            "threshold": data.get("threshold"),
        }
        if data.get("as_of"):
            payload["as_of"] = data["as_of"].isoformat()
        serializer = AttributeAnalysisRequestSerializer(data=payload)
        if not serializer.is_valid():
            for name, detail in serializer.errors.items():
                field = name if name in self.fields else None
                self.add_error(
                    field,
                    json.dumps(detail)
                    if not isinstance(detail, list)
                    else "; ".join(map(str, detail)),
                )
            return data
        data["as_of"] = serializer.validated_data["as_of"]
        data["target"] = dict(serializer.validated_data["target"])
        return data


def _colour(r: float | None) -> str:
    """A diverging background: blue for negative, red for positive correlations."""
    if r is None:
        return "#eeeeee"
    a = min(abs(r), 1.0)
    shade = int(255 - 155 * a)
    return f"rgb(255,{shade},{shade})" if r > 0 else f"rgb({shade},{shade},255)"


@admin.register(AttributeAnalysis)
class AttributeAnalysisAdmin(admin.ModelAdmin):
    form = AttributeAnalysisForm
    list_display = ["id", "status", "target", "as_of", "profiles", "duration_ms", "created_at"]
    list_filter = ["status"]
    actions = ["run_again"]
    change_form_template = "admin/analysis/attributeanalysis/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["status"]
        return [f.name for f in AttributeAnalysis._meta.fields]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["target", "attributes", "as_of", "threshold"]
        return [
            "status",
            "target",
            "attributes",
            "as_of",
            "threshold",
            "profiles",
            "chunks",
            "duration_ms",
            "errors",
            "created_by",
            "created_at",
            "finished_at",
        ]

    def has_change_permission(self, request, obj=None):
        # A run's record is what it computed: it is viewed, never edited (run it again instead).
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        obj.created_by = request.user.get_username()[:150]
        super().save_model(request, obj, form, change)
        if not change:
            transaction.on_commit(lambda: tasks.attribute_analysis_run.delay(obj.pk))
            messages.info(request, "Analysis queued: this page shows its progress and charts.")

    @admin.action(description="Run the selected analyses again")
    def run_again(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        queryset.update(status=RunState.QUEUED, errors=[], results={})
        for pk in ids:
            transaction.on_commit(lambda pk=pk: tasks.attribute_analysis_run.delay(pk))
        self.message_user(request, f"{len(ids)} analyses queued.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None and obj.results:
            extra.update(_chart_context(obj.results))
        extra["running"] = obj is not None and obj.status in (RunState.QUEUED, RunState.RUNNING)
        return super().change_view(request, object_id, form_url, extra_context=extra)


def _chart_context(results: dict) -> dict:
    corr = results.get("correlations") or {}
    names = corr.get("names") or []
    heat = [
        {
            "name": names[i],
            "cells": [
                {"value": v, "text": "—" if v is None else f"{v:.2f}", "bg": _colour(v)}
                for v in row
            ],
        }
        for i, row in enumerate(corr.get("pearson") or [])
    ]
    tests = results.get("tests") or []
    mi = {m["attribute"]: m["mutual_information"] for m in results.get("mutual_information", [])}
    bars = {
        "labels": [t["attribute"] for t in tests],
        "statistic": [t["statistic"] for t in tests],
        "test": [t["test"] for t in tests],
        "mi": [mi.get(t["attribute"]) for t in tests],
    }
    pca = results.get("pca") or {}
    scree = {
        "labels": [f"PC{i + 1}" for i in range(len(pca.get("explained_variance_ratio", [])))],
        "explained": pca.get("explained_variance_ratio", []),
        "cumulative": pca.get("cumulative", []),
    }
    loadings = [
        {"component": f"PC{i + 1}", "cells": [{"text": f"{v:.2f}", "bg": _colour(v)} for v in comp]}
        for i, comp in enumerate(pca.get("loadings", [])[:5])
    ]
    return {
        "heat_names": names,
        "heat": heat,
        "redundant": corr.get("redundant_pairs", []),
        "tests": [{**t, "mi": mi.get(t["attribute"])} for t in tests],
        "bars": bars,
        "scree": scree,
        "pca_names": pca.get("names", []),
        "loadings": loadings,
        "target_classes": results.get("target_classes", {}),
    }


MODEL_KINDS = ("propensity", "cluster")


class ModelSegmentForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=[("propensity", "Propensity model"), ("cluster", "Clustering")]
    )
    config = forms.JSONField(
        required=False,
        help_text='Propensity: {"target": {"event_type": "purchase", "window_days": 90}, '
        '"model": "gradient_boosting", "membership": {"top_share": 0.2}}. '
        'Cluster: {"features": ["purchase_recency_days", "frequency", "monetary"], '
        '"k_range": [2, 10]}. "retrain_hours" sets how often scheduled runs retrain.',
    )

    class Meta:
        model = ModelSegment
        fields = ["key", "name", "description", "kind", "config", "is_active"]

    def clean(self):
        data = super().clean()
        from segments.kinds import ConfigError, get_kind

        if data.get("kind"):
            try:
                data["config"] = get_kind(data["kind"]).clean_config(data.get("config") or {})
            except ConfigError as exc:
                self.add_error("config", f"{exc.field}: {exc.message}")
        return data


@admin.register(ModelSegment)
class ModelSegmentAdmin(admin.ModelAdmin):
    form = ModelSegmentForm
    list_display = ["name", "key", "kind", "is_active", "member_count", "computed_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "key"]
    change_form_template = "admin/analysis/modelsegment/change_form.html"
    actions = ["run_now"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind__in=MODEL_KINDS)

    def get_urls(self):
        from django.urls import path

        return [
            path(
                "<int:pk>/run/",
                self.admin_site.admin_view(self.run_view),
                name="analysis_modelsegment_run",
            ),
            *super().get_urls(),
        ]

    def _enqueue(self, ids):
        from segments.tasks import segment_run

        for pk in ids:
            transaction.on_commit(lambda pk=pk: segment_run.delay(pk, "admin"))

    @admin.action(description="Run the selected model segments now")
    def run_now(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        self._enqueue(ids)
        self.message_user(request, f"Run queued for {len(ids)} segment(s).")

    def run_view(self, request, pk: int):
        from django.http import HttpResponseNotAllowed, HttpResponseRedirect
        from django.shortcuts import get_object_or_404

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        segment = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, segment):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        self._enqueue([segment.pk])
        messages.info(request, "Run queued: this page follows its progress.")
        return HttpResponseRedirect("../change/")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from segments.models import RunStatus, SegmentRun

        extra = dict(extra_context or {})
        segment = self.get_object(request, object_id)
        if segment is not None:
            runs = SegmentRun.objects.filter(segment=segment)
            current = runs.filter(status__in=[RunStatus.RUNNING, RunStatus.APPLIED]).first()
            done = runs.filter(status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]).first()
            extra["current_run"] = current
            extra["last_run"] = done
            extra["recent_runs"] = list(runs[:10])
            if done is not None and done.status == RunStatus.SUCCEEDED:
                extra.update(_model_charts(segment, done.metrics))
        return super().change_view(request, object_id, form_url, extra_context=extra)


def _model_charts(segment, m: dict) -> dict:
    if m.get("kind") == "cluster":
        per_k = m.get("per_k") or []
        children = {c.get("label"): c for c in m.get("children", []) if "label" in c}
        return {
            "cluster": {
                "k": m.get("k"),
                "per_k": per_k,
                "stability": m.get("stability"),
                "clusters": [
                    {**c, "child": children.get(c["label"], {}).get("key")}
                    for c in m.get("clusters", [])
                ],
            },
            "cluster_chart": {
                "k": [r["k"] for r in per_k],
                "silhouette": [r["silhouette"] for r in per_k],
                "davies_bouldin": [r["davies_bouldin"] for r in per_k],
                "inertia": [r["inertia"] for r in per_k],
                "points": (m.get("pca") or {}).get("points", []),
                "ari": (m.get("stability") or {}).get("ari", []),
                "seeds": (m.get("stability") or {}).get("seeds", []),
            },
        }
    if m.get("kind") == "propensity" and m.get("metrics"):
        return {
            "propensity": m,
            "propensity_chart": {
                "calibration": m["metrics"]["calibration"],
                "baseline_calibration": m["baseline"]["calibration"],
                "importances": m.get("importances", [])[:15],
                "histogram": m.get("score_histogram", []),
            },
        }
    return {}
