"""An admin base class whose every add, change and delete also writes an audit entry (who, what,
when): for segments and experiments, whose admin pages save the models directly. Content and API
keys audit in their services instead (their API saves through them too)."""

from __future__ import annotations

import json

from django.contrib import admin

from profiles.audit import audit_record
from profiles.models import AuditAction


def _changed_fields(message) -> list[str]:
    """The field names of Django's admin change message (a JSON list), else none."""
    try:
        parts = json.loads(message) if isinstance(message, str) else message
    except ValueError:
        return []
    fields: set[str] = set()
    for part in parts or []:
        if isinstance(part, dict):
            for change in part.values():
                if isinstance(change, dict):
                    fields.update(str(f) for f in change.get("fields", []))
                    if "name" in change:  # an inline object added/changed/deleted
                        fields.add(str(change["name"]))
    return sorted(fields)


class AuditedAdmin(admin.ModelAdmin):
    """ModelAdmin that audits its writes. `audit_action` names the audit log's action."""

    audit_action: str = AuditAction.SEGMENT_CHANGE

    def _audit(self, request, obj, change: str, fields=()) -> None:
        details = {"model": obj._meta.model_name, "object": str(obj)[:200], "change": change}
        if fields:
            details["fields"] = list(fields)
        audit_record(
            action=self.audit_action, actor=request.user.get_username()[:150], details=details
        )

    def log_addition(self, request, obj, message):
        self._audit(request, obj, "created")
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, obj, "updated", _changed_fields(message))
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "deleted")
        return super().log_deletions(request, queryset)
