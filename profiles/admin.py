"""Admin for privacy officers and analysts: profiles (read-mostly, with export and erase), events,
consent history and the audit log (read-only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from core.errors import Unavailable
from core.pseudonym import pseudonymize

from . import privacy
from .models import AuditEntry, ConsentRecord, Event, Profile
from .selectors import profile_keys_resolve


class ConsentInline(admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    readonly_fields = ["purposes", "source", "policy_version", "gpc", "recorded_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["short_key", "first_seen", "last_seen", "event_count", "monetary"]
    list_filter = ["last_seen", "first_seen"]
    search_fields = ["key", "user_key"]
    readonly_fields = ["key", "user_key", "aggregates", "consent", "first_seen", "last_seen"]
    inlines = [ConsentInline]
    date_hierarchy = "last_seen"
    actions = ["export_json", "erase"]

    search_help_text = (
        "A visitor id or a user id (pseudonymised here, as stored: the raw id is never compared "
        "or kept), or the start of a profile key."
    )

    def get_search_results(self, request, queryset, search_term):
        """Profiles of the visitor or user id typed (by its keyed hash, as ingestion stores
        them), or whose key starts with the term (a key copied from another page)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        hashed = pseudonymize(term[:200])
        # A merged-away visitor id resolves to the profile that absorbed it (VisitorAlias).
        keys = {hashed, *profile_keys_resolve(profile_key=hashed)}
        matches = Q(key__in=keys) | Q(user_key=hashed)
        if len(term) >= 8 and all(c in "0123456789abcdef" for c in term.lower()):
            matches |= Q(key__startswith=term.lower())
        return queryset.filter(matches), False

    # Deleting a profile row would miss Redis and the audit log: "Erase" is the way.
    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("profiles.export_profile")

    def has_erase_permission(self, request) -> bool:
        return request.user.has_perm("profiles.erase_profile")

    @admin.action(description="Export as JSON", permissions=["export"])
    def export_json(self, request, queryset):
        actor = request.user.get_username()
        exports = []
        try:
            for profile_key in queryset.values_list("key", flat=True):
                exports.append(privacy.profile_export(profile_key=profile_key, actor=actor))
        except Unavailable:
            self.message_user(
                request, "Redis is unavailable: the export would be incomplete.", messages.ERROR
            )
            return None
        document = exports[0] if len(exports) == 1 else {"profiles": exports}
        response = HttpResponse(
            privacy.export_json(document), content_type="application/json; charset=utf-8"
        )
        filename = f"mosaic-export-{timezone.now():%Y%m%d-%H%M%S}.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @admin.action(description="Erase (every store, irreversible)", permissions=["erase"])
    def erase(self, request, queryset):
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Erase visitors?",
                "opts": self.model._meta,
                "profiles": list(queryset),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/profiles/profile/erase_confirmation.html", context
            )
        actor = request.user.get_username()
        erased = 0
        try:
            for profile_key in list(queryset.values_list("key", flat=True)):
                erased += privacy.profile_erase(profile_key=profile_key, actor=actor).erased
        except Unavailable:  # Redis down, or ingestion busy (ErasureBusy)
            self.message_user(
                request,
                f"Erased {erased} visitor(s), then stopped: Redis unavailable or ingestion busy. "
                "Retry for the rest.",
                messages.ERROR,
            )
            return None
        self.message_user(
            request,
            f"Erased {erased} visitor(s) from the database and Redis; see the audit log.",
            messages.SUCCESS,
        )
        return None

    @admin.display(description="key")
    def short_key(self, obj: Profile) -> str:
        return obj.key[:16] + "…"

    @admin.display(description="events")
    def event_count(self, obj: Profile) -> int:
        return obj.aggregates.get("event_count", 0)

    @admin.display(description="monetary")
    def monetary(self, obj: Profile) -> float:
        return obj.aggregates.get("monetary", 0)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the system only: viewable, never added, changed or deleted by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["type", "name", "value", "currency", "occurred_at", "received_at"]
    list_filter = ["type", "occurred_at"]
    search_fields = ["name", "event_id", "profile__key"]
    date_hierarchy = "occurred_at"
    raw_id_fields = ["profile"]
    list_select_related = ["profile"]


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["profile", "purposes", "source", "policy_version", "gpc", "recorded_at"]
    list_filter = ["source", "gpc", "policy_version"]
    search_fields = ["profile__key"]
    raw_id_fields = ["profile"]
    list_select_related = ["profile"]
    # Append-only (ReadOnlyAdmin): consent is recorded by the consent endpoint and its audit,
    # never added (back-dated...), edited or deleted by hand.


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor", "subject", "details"]
    list_filter = ["action", "actor", "created_at"]
    search_fields = ["subject", "actor", "action"]
    date_hierarchy = "created_at"
    readonly_fields = ["action", "actor", "subject", "details", "created_at"]

    # Append-only: written by the services, never by hand.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
