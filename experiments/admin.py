"""Admin for product teams: metrics, experiments with their arms and metrics inline, results."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.models import BaseInlineFormSet

from core.forms import JSON_FORMFIELD_OVERRIDES
from core.revision_admin import RevisionHistoryAdminMixin, RevisionRecordAdmin
from segments.admin_audit import AuditedAdmin
from segments.models import AuditAction

from .lifecycle import ArmSpec, experiment_revert, experiment_stamp, experiment_validate
from .models import (
    Arm,
    Experiment,
    ExperimentMetric,
    ExperimentRevision,
    Exposure,
    Metric,
    MetricRole,
    ResultSnapshot,
)
from .revisions import experiment_history, experiment_revision_record, experiment_state


class ArmFormSet(BaseInlineFormSet):
    """Validates the experiment's setup as a whole (arms and the experiment's own fields), so
    that a setup that cannot run is refused at save with the field named."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        arms = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            arms.append(
                ArmSpec(
                    key=data.get("key") or "",
                    variant=data.get("variant"),
                    weight=float(data.get("weight") or 0),
                    is_control=bool(data.get("is_control")),
                    name=data.get("name") or "",
                    extra_variants=tuple(data.get("extra_variants") or ()),
                )
            )
        # The parent form's placements (its M2M is saved after the inlines are validated).
        extra = getattr(self.instance, "_pending_extra_placements", None)
        errors = experiment_validate(
            experiment=self.instance,
            arms=arms,
            extra_placements=list(extra) if extra is not None else None,
        )
        if errors:
            raise ValidationError([f"{field}: {message}" for field, message in errors.items()])


class ArmInline(admin.TabularInline):
    model = Arm
    formset = ArmFormSet
    extra = 0
    fields = ["key", "name", "variant", "extra_variants", "weight", "is_control", "position"]
    raw_id_fields = ["variant", "extra_variants"]

    # Narrower inputs than the admin's 20em text boxes, so that the experiment page (arms and
    # history) fits a 1280 px window.
    _WIDTHS = {
        "key": "9em",
        "name": "12em",
        "variant": "4em",
        "extra_variants": "7em",
        "weight": "5em",
        "position": "4em",
    }

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        width = self._WIDTHS.get(db_field.name)
        if field is not None and width:
            field.widget.attrs["style"] = f"width: {width}"
        return field


class ExperimentMetricFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        roles = [
            f.cleaned_data.get("role")
            for f in self.forms
            if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE")
        ]
        if roles and roles.count(MetricRole.PRIMARY) != 1:
            raise ValidationError("metrics: exactly one metric must be primary.")


class ExperimentMetricInline(admin.TabularInline):
    model = ExperimentMetric
    formset = ExperimentMetricFormSet
    extra = 0
    fields = ["metric", "role"]


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "kind", "event_type", "event_name", "window_hours"]
    list_filter = ["kind", "event_type"]
    search_fields = ["name", "key", "event_name"]
    prepopulated_fields = {"key": ["name"]}


@admin.register(Experiment)
class ExperimentAdmin(RevisionHistoryAdminMixin, AuditedAdmin):
    audit_action = AuditAction.EXPERIMENT_CHANGE
    revision_model = ExperimentRevision
    history_selector = staticmethod(experiment_history)
    revert_service = staticmethod(experiment_revert)
    revert_error_prefix = False  # experiment_revert's refusals name the experiment and revision
    formfield_overrides = {models.JSONField: JSON_FORMFIELD_OVERRIDES}
    list_filter = ["status", "placement"]
    search_fields = ["name", "key", "hypothesis"]
    prepopulated_fields = {"key": ["name"]}
    inlines = [ArmInline, ExperimentMetricInline]
    list_select_related = ["placement"]
    readonly_fields = ["started_at", "ended_at", "analysis_started_at", "results_link"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "key",
                    "hypothesis",
                    "placement",
                    "extra_placements",
                    "status",
                    "rollout_arm",
                    "results_link",
                ]
            },
        ),
        (
            "Assignment",
            {
                "fields": ["coverage", "seed", "sticky", "layer", "layer_start", "layer_end"],
                "description": "Changing weights of a started experiment: a sticky experiment "
                "keeps exposed visitors in their arm; otherwise the seed must change too, which "
                "reassigns everyone and restarts the analysis.",
            },
        ),
        ("Eligibility", {"fields": ["condition"]}),
        (
            "Analysis",
            {
                "fields": [
                    "engine",
                    "cuped",
                    "cuped_days",
                    "planned_sample_size",
                    "bandit",
                    "bandit_min_weight",
                    "started_at",
                    "ended_at",
                    "analysis_started_at",
                ]
            },
        ),
    ]

    list_display = [
        "name",
        "key",
        "placement",
        "status",
        "coverage",
        "started_at",
        "ended_at",
        "results_link",
    ]
    actions = ["results_rebuild"]

    @admin.action(description="Recompute results from scratch (repairs the stored values)")
    def results_rebuild(self, request, queryset):
        from django.db import transaction

        from .tasks import results_compute

        ids = list(queryset.values_list("pk", flat=True))
        for experiment_id in ids:
            transaction.on_commit(
                lambda experiment_id=experiment_id: results_compute.delay(experiment_id, True)
            )
        self.message_user(
            request,
            f"Recomputation from scratch queued for {len(ids)} experiment(s); the results page "
            "shows it once the worker has run it.",
        )

    def get_urls(self):
        from django.urls import path

        from .admin_views import experiment_results_view

        return [
            path(
                "<int:object_id>/results/",
                self.admin_site.admin_view(experiment_results_view),
                name="experiments_experiment_results",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Results")
    def results_link(self, obj):
        from django.urls import reverse
        from django.utils.html import format_html

        if obj is None or obj.pk is None:
            return "-"
        url = reverse("admin:experiments_experiment_results", args=[obj.pk])
        return format_html('<a href="{}">Results</a>', url)

    def save_form(self, request, form, change):
        obj = super().save_form(request, form, change)
        obj._pending_extra_placements = form.cleaned_data.get("extra_placements") or []
        return obj

    def save_model(self, request, obj, form, change):
        previous = Experiment.objects.filter(pk=obj.pk).first() if change else None
        # The state before this change, for the revision written once the arms and metric
        # links (inlines) are saved too.
        obj._revision_before = experiment_state(previous) if previous is not None else None
        experiment_stamp(experiment=obj, previous=previous)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        experiment = form.instance
        experiment_revision_record(
            experiment=experiment,
            before=getattr(experiment, "_revision_before", None),
            author=request.user.get_username(),
            comment="" if change else "Created",
        )


@admin.register(Arm)
class ArmAdmin(AuditedAdmin):
    audit_action = AuditAction.EXPERIMENT_CHANGE
    list_display = ["__str__", "name", "variant", "weight", "is_control"]
    list_filter = ["experiment", "is_control"]
    search_fields = ["key", "name", "experiment__key"]
    # Variant.__str__ reads the placement: join it rather than a query per row.
    list_select_related = ["experiment", "variant__placement"]

    # An arm changed on its own page is a change of its experiment: recorded as its revision.
    def save_model(self, request, obj, form, change):
        experiment = Experiment.objects.filter(pk=obj.experiment_id).first()
        obj._revision_before = experiment_state(experiment) if experiment is not None else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        arm = form.instance
        experiment_revision_record(
            experiment=arm.experiment,
            before=getattr(arm, "_revision_before", None),
            author=request.user.get_username(),
            comment=f"Arm {arm.key} {'changed' if change else 'added'}",
        )

    def delete_model(self, request, obj):
        experiment = obj.experiment
        before = experiment_state(experiment)
        super().delete_model(request, obj)
        experiment_revision_record(
            experiment=experiment,
            before=before,
            author=request.user.get_username(),
            comment=f"Arm {obj.key} deleted",
        )

    def delete_queryset(self, request, queryset):
        for arm in queryset.select_related("experiment"):
            self.delete_model(request, arm)


@admin.register(ResultSnapshot)
class ResultSnapshotAdmin(admin.ModelAdmin):
    """Read-only: written by the results task."""

    list_display = ["experiment", "computed_at", "users", "srm_p_value", "duration_ms"]
    list_filter = ["experiment"]
    readonly_fields = ["experiment", "computed_at", "users", "srm_p_value", "data", "duration_ms"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin):
    """Read-only: exposures are written by the exposures_flush task, never by hand."""

    list_display = ["experiment", "arm_key", "profile_key", "first_exposed_at"]
    list_filter = ["experiment", "arm_key"]
    search_fields = ["profile_key", "experiment__key"]
    list_select_related = ["experiment"]
    date_hierarchy = "first_exposed_at"
    readonly_fields = ["experiment", "arm_key", "profile_key", "first_exposed_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExperimentRevision)
class ExperimentRevisionAdmin(RevisionRecordAdmin):
    """Read-only: written on every change of an experiment (admin, API, start/pause/stop)."""

    list_display = ["experiment", "when", "author", "comment", "summary"]
    list_filter = ["experiment", "author"]
    search_fields = ["experiment__key", "comment", "author"]
    list_select_related = ["experiment"]
    readonly_fields = ["experiment", "state", "author", "comment", "created_at"]
    revert_service = staticmethod(experiment_revert)
    subject_change_permission = "experiments.change_experiment"
    revert_error_prefix = False

    @admin.display(description="state")
    def summary(self, obj: ExperimentRevision) -> str:
        state = obj.state
        weights = ", ".join(
            f"{arm.get('key')} {arm.get('weight'):g}" for arm in state.get("arms") or []
        )
        return f"{state.get('status')} · {weights}"
