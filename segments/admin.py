"""Admin of segments' memberships (read-only); segments, runs, triggers and deliveries are in
admin_segments (profiles, events, consent and the audit log: profiles/admin.py)."""

from __future__ import annotations

from django.contrib import admin

from profiles.admin import ReadOnlyAdmin

from .models import SegmentMembership


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(ReadOnlyAdmin):
    list_display = ["segment", "profile", "since"]
    list_filter = ["segment"]
    search_fields = ["profile__key", "segment__key"]
    raw_id_fields = ["profile"]
    list_select_related = ["segment", "profile"]


# Segments, runs, triggers and deliveries: their own module (registered on import).
from . import admin_segments  # noqa: E402, F401
