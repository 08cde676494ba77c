"""Admin for the trait schema, and a read-only view of visitor aliases."""

from __future__ import annotations

from django.contrib import admin

from .models import TraitDefinition, VisitorAlias


@admin.register(TraitDefinition)
class TraitDefinitionAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "min_value", "max_value", "pattern", "shareable", "description"]
    list_filter = ["type", "shareable"]
    search_fields = ["name", "description"]


@admin.register(VisitorAlias)
class VisitorAliasAdmin(admin.ModelAdmin):
    list_display = ["alias_key", "profile", "created_at"]
    list_select_related = ["profile"]
    readonly_fields = ["alias_key", "profile", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False
