"""Admin for product teams: experiments with their arms inline."""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from core.forms import JSON_FORMFIELD_OVERRIDES
from segments.admin_audit import AuditedAdmin
from segments.models import AuditAction

from .models import Arm, Experiment, Exposure


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0
    fields = ["key", "name", "variant", "weight", "is_control", "position"]
    raw_id_fields = ["variant"]


@admin.register(Experiment)
class ExperimentAdmin(AuditedAdmin):
    audit_action = AuditAction.EXPERIMENT_CHANGE
    formfield_overrides = {models.JSONField: JSON_FORMFIELD_OVERRIDES}
    list_display = ["name", "key", "placement", "status", "coverage", "started_at", "ended_at"]
    list_filter = ["status", "placement"]
    search_fields = ["name", "key", "hypothesis"]
    prepopulated_fields = {"key": ["name"]}
    inlines = [ArmInline]
    list_select_related = ["placement"]


@admin.register(Arm)
class ArmAdmin(AuditedAdmin):
    audit_action = AuditAction.EXPERIMENT_CHANGE
    list_display = ["__str__", "name", "variant", "weight", "is_control"]
    list_filter = ["experiment", "is_control"]
    search_fields = ["key", "name", "experiment__key"]
    # Variant.__str__ reads the placement: join it rather than a query per row.
    list_select_related = ["experiment", "variant__placement"]


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
