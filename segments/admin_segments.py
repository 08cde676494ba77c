"""Admin of segments: list with kind, size, trend, last run and warnings; a detail page with
size and KPI charts, the RFM grid, members export, "Run now" with progress, static list upload,
triggers and their delivery log; the overlap table (Jaccard) of active segments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from core.forms import JSON_FORMFIELD_OVERRIDES, PositionedJSONField
from core.revision_admin import RevisionHistoryAdminMixin, RevisionRecordAdmin

from . import segment_services
from .admin_audit import AuditedAdmin
from .builder import ConditionBuilderWidget
from .catalogue import condition_findings
from .engine.rfm import GRID, SEGMENT_LABELS
from .guardrails import placements_overloaded, segment_warnings, segments_overlap
from .kinds import ConfigError, get_kind, kind_choices
from .models import (
    RunStatus,
    Segment,
    SegmentKind,
    SegmentKpi,
    SegmentRevision,
    SegmentRun,
    SegmentTrigger,
    WebhookDelivery,
)
from .revisions import segment_history, segment_revert
from .static_lists import StaticListError, static_keys_from_csv, static_list_add, text_lines

TREND_DAYS = 30
CHART_DAYS = 90
OVERLAP_MAX = 30


class SegmentAdminForm(forms.ModelForm):
    """The kinds offered are the registered ones; each kind validates its config; only
    condition segments have a condition, and it may only read attributes a stored profile can
    have (a request attribute or a path outside the catalogue would leave the segment empty)."""

    kind = forms.ChoiceField(choices=kind_choices)

    class Meta:
        model = Segment
        fields = ["name", "key", "description", "kind", "condition", "config", "is_active"]
        field_classes = {"condition": PositionedJSONField, "config": PositionedJSONField}
        # The audience builder, for profile attributes only, with the live count of matches.
        widgets = {"condition": ConditionBuilderWidget(scope="segment")}

    def clean_condition(self):
        condition = self.cleaned_data.get("condition")
        errors = [
            str(f)
            for f in condition_findings(condition, profile_only=True)
            if f.severity == "error"
        ]
        if errors:
            raise forms.ValidationError(errors)
        return condition

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind_key = data.get("kind")
        if not kind_key:
            return data
        if kind_key != SegmentKind.CONDITION and data.get("condition"):
            self.add_error(
                "condition", f"Only condition segments have a condition, not {kind_key}."
            )
        try:
            data["config"] = get_kind(kind_key).clean_config(data.get("config") or {})
        except ConfigError as exc:
            self.add_error("config", f"{exc.field}: {exc.message}")
        return data


class TriggerInline(admin.TabularInline):
    model = SegmentTrigger
    extra = 0
    fields = ["name", "url", "on_enter", "on_exit", "is_active", "secret", "deliveries_link"]
    readonly_fields = ["secret", "deliveries_link"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="deliveries")
    def deliveries_link(self, obj: SegmentTrigger) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:segments_webhookdelivery_changelist") + f"?trigger__id__exact={obj.pk}"
        return format_html('<a href="{}">delivery log</a>', url)


def sparkline(values: list[int], width: int = 120, height: int = 24) -> str:
    """An inline SVG polyline of the values (no script, no external file)."""
    if len(values) < 2:
        return "—"
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    return format_html(
        '<svg class="seg-spark" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="size trend {} to {}"><polyline fill="none" stroke="#417690" '
        'stroke-width="1.5" points="{}"/></svg>',
        width,
        height,
        width,
        height,
        values[0],
        values[-1],
        points,
    )


@admin.register(Segment)
class SegmentAdmin(RevisionHistoryAdminMixin, AuditedAdmin):
    form = SegmentAdminForm
    revision_model = SegmentRevision
    history_selector = staticmethod(segment_history)
    revert_service = staticmethod(segment_revert)
    revert_error_prefix = False  # segment_revert's refusals name the segment and revision
    formfield_overrides = {models.JSONField: JSON_FORMFIELD_OVERRIDES}
    list_display = [
        "name",
        "key",
        "kind",
        "is_active",
        "size",
        "trend",
        "last_run",
        "warnings_list",
    ]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "key", "description"]
    prepopulated_fields = {"key": ["name"]}
    readonly_fields = ["member_count", "computed_at"]
    inlines = [TriggerInline]
    actions = ["recompute"]
    change_list_template = "admin/segments/segment/change_list.html"
    change_form_template = "admin/segments/segment/change_form.html"

    def get_queryset(self, request):
        last = SegmentRun.objects.filter(segment=OuterRef("pk")).order_by("-started_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_run_status=Subquery(last.values("status")[:1]),
                last_run_at=Subquery(last.values("started_at")[:1]),
            )
        )

    def changelist_view(self, request, extra_context=None):
        since = timezone.now().date() - timedelta(days=TREND_DAYS)
        trends: dict[int, list[int]] = {}
        for segment_id, size in (
            SegmentKpi.objects.filter(day__gte=since)
            .order_by("day")
            .values_list("segment_id", "size")
        ):
            trends.setdefault(segment_id, []).append(size)
        request._segment_trends = trends
        request._overloaded = placements_overloaded()
        extra = {"overlap_url": reverse("admin:segments_segment_overlap"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    @admin.display(description="size", ordering="member_count")
    def size(self, obj: Segment) -> int:
        return obj.member_count

    @admin.display(description=f"trend ({TREND_DAYS} d)")
    def trend(self, obj: Segment) -> str:
        trends = getattr(self, "_request_trends", None)
        return sparkline((trends or {}).get(obj.pk, []))

    @admin.display(description="last run")
    def last_run(self, obj: Segment) -> str:
        status = getattr(obj, "last_run_status", None)
        if not status:
            return "never"
        colour = {"succeeded": "#2a7d2a", "failed": "#b00", "abandoned": "#b00"}.get(status, "#555")
        return format_html(
            '<span style="color:{}">{}</span> {}',
            colour,
            status,
            timezone.localtime(obj.last_run_at).strftime("%Y-%m-%d %H:%M"),
        )

    @admin.display(description="warnings")
    def warnings_list(self, obj: Segment) -> str:
        warnings = segment_warnings(segment=obj, overloaded=getattr(self, "_overloaded", None))
        if not warnings:
            return "—"
        return format_html(
            "<br>".join(["<span title='{}'>⚠ {}</span>"] * len(warnings)),
            *[x for w in warnings for x in (w["message"], w["code"].replace("_", " "))],
        )

    def get_changelist_instance(self, request):
        # The list's display methods read what changelist_view computed once for the page.
        self._request_trends = getattr(request, "_segment_trends", {})
        self._overloaded = getattr(request, "_overloaded", None)
        return super().get_changelist_instance(request)

    def get_urls(self):
        own = [
            path(
                "overlap/",
                self.admin_site.admin_view(self.overlap_view),
                name="segments_segment_overlap",
            ),
            path(
                "<int:segment_id>/run/",
                self.admin_site.admin_view(self.run_view),
                name="segments_segment_run",
            ),
            path(
                "<int:segment_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="segments_segment_progress",
            ),
            path(
                "<int:segment_id>/upload/",
                self.admin_site.admin_view(self.upload_view),
                name="segments_segment_upload",
            ),
        ]
        return own + super().get_urls()

    def save_model(self, request, obj, form, change) -> None:
        # Through the service, which records the revision (author: this user).
        segment_services.segment_save(
            segment=obj, author=request.user.get_username(), comment="" if change else "Created"
        )
        for finding in condition_findings(obj.condition, profile_only=True):
            messages.warning(request, f"Condition: {finding}")
        if obj.is_active:
            segment_services.segment_run_enqueue(segment=obj, trigger="admin")

    def delete_model(self, request, obj) -> None:
        segment_services.segment_delete(segment=obj)

    @admin.action(description="Run selected segments now")
    def recompute(self, request, queryset) -> None:
        segments = list(queryset.filter(is_active=True))
        for segment in segments:
            segment_services.segment_run_enqueue(segment=segment, trigger="admin")
        self.message_user(request, f"Run queued for {len(segments)} segment(s).", messages.INFO)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        segment = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if segment is not None:
            extra.update(self._detail_context(segment))
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def _detail_context(self, segment: Segment) -> dict[str, Any]:
        since = timezone.now().date() - timedelta(days=CHART_DAYS)
        kpis = list(SegmentKpi.objects.filter(segment=segment, day__gte=since).order_by("day"))
        series = {
            "days": [k.day.isoformat() for k in kpis],
            "size": [k.size for k in kpis],
            "entered": [k.entered for k in kpis],
            "exited": [k.exited for k in kpis],
            "conversion": [
                round(100 * k.conversion_rate, 2) if k.conversion_rate is not None else None
                for k in kpis
            ],
            "revenue_per_member": [k.revenue_per_member for k in kpis],
            "aov": [k.average_order_value for k in kpis],
        }
        runs = list(segment.runs.all()[:10])
        context: dict[str, Any] = {
            "segment": segment,
            "kpi_series": series,
            "kpi_latest": kpis[-1] if kpis else None,
            "recent_runs": runs,
            "segment_warnings": segment_warnings(segment=segment),
            "run_url": reverse("admin:segments_segment_run", args=[segment.pk]),
            "progress_url": reverse("admin:segments_segment_progress", args=[segment.pk]),
            "members_csv_url": reverse("api-segment-members", args=[segment.key]) + "?export=csv",
            "upload_url": reverse("admin:segments_segment_upload", args=[segment.pk])
            if segment.kind == SegmentKind.STATIC
            else None,
        }
        if segment.kind == SegmentKind.RFM:
            context["rfm_grid"] = self._rfm_grid(segment, runs)
        return context

    def _rfm_grid(self, segment: Segment, runs: list[SegmentRun]) -> dict[str, Any] | None:
        grid = next((r.metrics.get("rf_grid") for r in runs if r.metrics.get("rf_grid")), None)
        if grid is None:
            return None
        chosen = set((segment.config or {}).get("segments", []))
        peak = max((n for row in grid for n in row), default=0) or 1
        rows = []
        for r in range(5, 0, -1):
            cells = []
            for f in range(1, 6):
                n = grid[r - 1][f - 1]
                slug = GRID[r - 1][f - 1]
                # Blue, darker with the count: a heat map in plain HTML.
                alpha = 0.08 + 0.82 * n / peak
                cells.append(
                    {
                        "count": n,
                        "label": SEGMENT_LABELS[slug],
                        "chosen": slug in chosen,
                        "style": f"background: rgba(65, 118, 144, {alpha:.2f});"
                        f" color: {'#fff' if alpha > 0.5 else '#222'};",
                    }
                )
            rows.append({"r": r, "cells": cells})
        return {"rows": rows, "total": sum(map(sum, grid))}

    def run_view(self, request, segment_id: int):
        segment = get_object_or_404(Segment, pk=segment_id)
        if request.method != "POST":
            return JsonResponse(
                {"errors": [{"field": "method", "message": "POST only."}]}, status=405
            )
        if not self.has_change_permission(request, segment):
            return JsonResponse(
                {"errors": [{"field": "segment", "message": "Not allowed."}]}, status=403
            )
        if not segment.is_active:
            return JsonResponse(
                {"errors": [{"field": "is_active", "message": "Inactive."}]}, status=409
            )
        segment_services.segment_run_enqueue(segment=segment, trigger="admin")
        return JsonResponse({"queued": True})

    def progress_view(self, request, segment_id: int):
        segment = get_object_or_404(Segment, pk=segment_id)
        run = segment.runs.first()
        if run is None:
            return JsonResponse({"run": None})
        return JsonResponse(
            {
                "run": run.pk,
                "status": run.status,
                "scanned": run.profiles_scanned,
                "total": run.profiles_total,
                "size": run.size,
                "entered": run.entered,
                "exited": run.exited,
                "duration_ms": run.duration_ms,
                "finished": run.status not in (RunStatus.RUNNING, RunStatus.APPLIED),
            }
        )

    def upload_view(self, request, segment_id: int):
        segment = get_object_or_404(Segment, pk=segment_id)
        if segment.kind != SegmentKind.STATIC:
            self.message_user(
                request, "Only static segments take an uploaded list.", messages.ERROR
            )
            return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[segment.pk]))
        form = StaticUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                id_type, keys = static_keys_from_csv(
                    text_lines(form.cleaned_data["file"].file),
                    id_type=form.cleaned_data["id_type"] or None,
                )
                result = static_list_add(
                    segment=segment,
                    id_type=id_type,
                    keys=keys,
                    replace=form.cleaned_data["replace"],
                )
            except StaticListError as exc:
                form.add_error("file", f"{exc.field}: {exc.message}")
            else:
                segment_services.segment_run_enqueue(segment=segment, trigger="upload")
                self.message_user(
                    request,
                    f"{result.received} {id_type} ids read (pseudonymised), {result.added} added, "
                    f"{result.removed} removed; list size {result.size}. A run is queued.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:segments_segment_change", args=[segment.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Upload ids to {segment.name}",
            "opts": self.model._meta,
            "original": segment,
            "form": form,
        }
        return TemplateResponse(request, "admin/segments/segment/upload.html", context)

    def overlap_view(self, request):
        segments = list(
            Segment.objects.filter(is_active=True).order_by("-member_count", "key")[:OVERLAP_MAX]
        )
        overlap = segments_overlap(segments=segments)
        rows = []
        for segment, row in zip(segments, overlap["matrix"], strict=True):
            cells = []
            for cell in row:
                j = cell["jaccard"]
                alpha = 0.05 + 0.85 * (j or 0)
                cells.append(
                    {
                        **cell,
                        "style": mark_safe(
                            f"background: rgba(65, 118, 144, {alpha:.2f});"
                            f" color: {'#fff' if alpha > 0.5 else '#222'};"
                        ),
                    }
                )
            rows.append({"segment": segment, "cells": cells})
        context = {
            **self.admin_site.each_context(request),
            "title": "Segment overlap (Jaccard)",
            "opts": self.model._meta,
            "segments": segments,
            "rows": rows,
            "limit": OVERLAP_MAX,
        }
        return TemplateResponse(request, "admin/segments/segment/overlap.html", context)


class StaticUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV, one id per line; optional header visitor_id or user_id.")
    id_type = forms.ChoiceField(
        choices=[
            ("", "from the header (default: visitor)"),
            ("visitor", "visitor ids"),
            ("user", "user ids"),
        ],
        required=False,
    )
    replace = forms.BooleanField(required=False, help_text="Replace the whole list.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.MOSAIC_STATIC_LIST_MAX_IDS * 202
        if upload.size > limit:
            raise forms.ValidationError(f"Larger than {limit} bytes (the list limit).")
        return upload


@admin.register(SegmentRun)
class SegmentRunAdmin(admin.ModelAdmin):
    list_display = [
        "segment",
        "status",
        "trigger",
        "started_at",
        "duration_ms",
        "profiles_scanned",
        "entered",
        "exited",
        "size",
    ]
    list_filter = ["status", "kind", "trigger"]
    search_fields = ["segment__key"]
    list_select_related = ["segment"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "segment_key",
        "trigger",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_error_short",
        "delivered_at",
    ]
    list_filter = ["status", "event", "trigger"]
    search_fields = ["trigger__segment__key", "last_error"]
    list_select_related = ["trigger__segment"]
    readonly_fields = [
        "trigger",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "body",
        "created_at",
        "last_attempt_at",
        "delivered_at",
    ]
    exclude = ["profile"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="segment")
    def segment_key(self, obj: WebhookDelivery) -> str:
        return obj.trigger.segment.key

    @admin.display(description="last error")
    def last_error_short(self, obj: WebhookDelivery) -> str:
        return (obj.last_error or "—")[:80]


@admin.register(SegmentRevision)
class SegmentRevisionAdmin(RevisionRecordAdmin):
    """Read-only: written by segment_services on every change (admin or API)."""

    list_display = ["segment", "when", "author", "comment", "summary"]
    list_filter = ["segment", "author"]
    search_fields = ["segment__key", "comment", "author"]
    list_select_related = ["segment"]
    readonly_fields = ["segment", "state", "author", "comment", "created_at"]
    revert_service = staticmethod(segment_revert)
    subject_change_permission = "segments.change_segment"
    revert_error_prefix = False

    @admin.display(description="state")
    def summary(self, obj: SegmentRevision) -> str:
        state = obj.state
        active = "active" if state.get("is_active") else "inactive"
        return f"{state.get('name')} · {state.get('kind')} · {active}"
