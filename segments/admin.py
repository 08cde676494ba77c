"""Admin for analysts: profiles (read-mostly), events, consent history (read-only), segments."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction

from .models import ConsentRecord, Event, Profile, Segment, SegmentMembership


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

    @admin.display(description="key")
    def short_key(self, obj: Profile) -> str:
        return obj.key[:16] + "…"

    @admin.display(description="events")
    def event_count(self, obj: Profile) -> int:
        return obj.aggregates.get("event_count", 0)

    @admin.display(description="monetary")
    def monetary(self, obj: Profile) -> float:
        return obj.aggregates.get("monetary", 0)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["type", "name", "value", "currency", "occurred_at", "received_at"]
    list_filter = ["type", "occurred_at"]
    search_fields = ["name", "event_id", "profile__key"]
    date_hierarchy = "occurred_at"
    raw_id_fields = ["profile"]
    list_select_related = ["profile"]


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    list_display = ["profile", "purposes", "source", "policy_version", "gpc", "recorded_at"]
    list_filter = ["source", "gpc", "policy_version"]
    search_fields = ["profile__key"]
    raw_id_fields = ["profile"]

    # Append-only: history is never edited or deleted by hand.
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "kind", "is_active", "member_count", "computed_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "key", "description"]
    prepopulated_fields = {"key": ["name"]}
    readonly_fields = ["member_count", "computed_at"]
    actions = ["recompute"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        from .tasks import segment_recompute

        transaction.on_commit(lambda: segment_recompute.delay(obj.pk))

    @admin.action(description="Recompute selected segments now")
    def recompute(self, request, queryset) -> None:
        from .tasks import segment_recompute

        ids = list(queryset.values_list("pk", flat=True))
        transaction.on_commit(lambda: [segment_recompute.delay(pk) for pk in ids])
        self.message_user(request, f"Recompute queued for {len(ids)} segment(s).", messages.INFO)


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(admin.ModelAdmin):
    list_display = ["segment", "profile", "since"]
    list_filter = ["segment"]
    search_fields = ["profile__key", "segment__key"]
    raw_id_fields = ["profile"]
    list_select_related = ["segment", "profile"]
