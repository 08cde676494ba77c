"""Admin for editors: block types, placements with their variants, revisions with revert."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Q
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from core.forms import JSON_FORMFIELD_OVERRIDES
from core.revision_admin import RevisionHistoryAdminMixin, RevisionRecordAdmin
from rules import describe_condition

from . import selectors, services
from .forms import (
    BlockTypeForm,
    PlacementForm,
    VariantForm,
    block_field_names,
    variant_form_for,
)
from .models import (
    BlockType,
    Placement,
    PlacementRevision,
    Variant,
    VariantRevision,
    VariantStatus,
)


def _author(request) -> str:
    return request.user.get_username() if request.user.is_authenticated else ""


def _in_words(condition: dict | None) -> str:
    try:
        return describe_condition(condition or {})
    except Exception:  # an invalid condition is reported at the field, not here
        return "—"


@admin.register(BlockType)
class BlockTypeAdmin(admin.ModelAdmin):
    formfield_overrides = {models.JSONField: JSON_FORMFIELD_OVERRIDES}
    form = BlockTypeForm
    list_display = ["name", "key", "field_names", "variant_count", "updated_at"]
    search_fields = ["name", "key", "description"]
    prepopulated_fields = {"key": ["name"]}

    @admin.display(description="fields")
    def field_names(self, obj: BlockType) -> str:
        return ", ".join((obj.schema or {}).get("properties", {})) or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_variants=Count("variants"))

    @admin.display(description="variants", ordering="n_variants")
    def variant_count(self, obj: BlockType) -> int:
        return obj.n_variants

    def save_model(self, request, obj, form, change) -> None:
        # BlockTypeForm ran services.block_type_problems, the API's rules.
        services.block_type_save(block_type=obj, author=_author(request), validate=False)

    def delete_model(self, request, obj) -> None:
        services.block_type_delete(block_type=obj, author=_author(request))

    def delete_queryset(self, request, queryset) -> None:
        for block_type in queryset:
            services.block_type_delete(block_type=block_type, author=_author(request))


# Widths of the placement page's variant rows, so that the page fits a 1280 px window (the
# admin's default text inputs are 20em wide each).
_INLINE_WIDTHS = {"key": "10em", "name": "14em", "priority": "5em", "locale": "5em"}


class VariantInline(admin.TabularInline):
    model = Variant
    form = VariantForm
    extra = 0
    fields = ["key", "name", "status", "priority", "locale", "block_type"]
    show_change_link = True

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        width = _INLINE_WIDTHS.get(db_field.name)
        if field is not None and width:
            field.widget.attrs["style"] = f"width: {width}"
        return field


@admin.register(Placement)
class PlacementAdmin(RevisionHistoryAdminMixin, admin.ModelAdmin):
    revision_model = PlacementRevision
    history_selector = staticmethod(selectors.placement_history)
    revert_service = staticmethod(services.placement_revert)
    revert_error_prefix = False  # placement_revert's refusals name the placement and revision
    form = PlacementForm
    fields = ["key", "name", "description", "default_variant"]  # the key stays first when read-only
    list_display = ["key", "name", "default_variant", "live_variants", "updated_at"]
    search_fields = ["key", "name", "description"]
    inlines = [VariantInline]

    def get_queryset(self, request):
        live = Count("variants", filter=Q(variants__status=VariantStatus.LIVE))
        # Variant.__str__ reads the placement: join it rather than a query per row.
        queryset = super().get_queryset(request).select_related("default_variant__placement")
        return queryset.annotate(n_live=live)

    @admin.display(description="live variants", ordering="n_live")
    def live_variants(self, obj: Placement) -> int:
        return obj.n_live

    def save_formset(self, request, form, formset, change) -> None:
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            try:
                services.variant_delete(variant=obj, author=_author(request))
            except ValidationError as exc:
                messages.error(request, f"{obj} was not deleted: " + " ".join(exc.messages))
        for variant in instances:
            # The inline forms ran services.variant_problems already (VariantForm._post_clean).
            services.variant_save(
                variant=variant, author=_author(request), comment="Edited inline", validate=False
            )
        formset.save_m2m()

    def get_readonly_fields(self, request, obj=None):
        # Pages use the key, and a revision does not restore it: fixed once created.
        return ["key"] if obj is not None else []

    def save_model(self, request, obj, form, change) -> None:
        services.placement_save(
            placement=obj,
            author=_author(request),
            comment="" if change else "Created",
            validate=False,  # PlacementForm ran services.placement_problems
        )
        if change and obj.default_variant_id is None and obj.variants.exists():
            messages.warning(request, "This placement has no default variant yet.")

    def delete_model(self, request, obj) -> None:
        services.placement_delete(placement=obj, author=_author(request))

    def delete_queryset(self, request, queryset) -> None:
        for placement in queryset:
            services.placement_delete(placement=placement, author=_author(request))


@admin.register(Variant)
class VariantAdmin(RevisionHistoryAdminMixin, admin.ModelAdmin):
    formfield_overrides = {models.JSONField: JSON_FORMFIELD_OVERRIDES}
    revision_model = VariantRevision
    history_selector = staticmethod(selectors.variant_history)
    revert_service = staticmethod(services.variant_revert)
    form = VariantForm
    list_display = [
        "__str__",
        "name",
        "status",
        "priority",
        "block_type",
        "targeting",
        "locale",
        "starts_at",
        "ends_at",
    ]
    list_filter = ["status", "placement", "block_type", "locale"]
    search_fields = ["key", "name", "placement__key"]
    list_select_related = ["placement", "block_type"]
    readonly_fields = ["condition_summary", "preview_link", "revisions_link"]

    @admin.display(description="targeting")
    def targeting(self, obj: Variant) -> str:
        return _in_words(obj.condition)

    @admin.display(description="in words")
    def condition_summary(self, obj: Variant) -> str:
        return _in_words(obj.condition)

    @admin.display(description="preview")
    def preview_link(self, obj: Variant) -> str:
        if not obj.pk:
            return "Save the variant first."
        try:
            url = reverse("mosaic-variant-preview", args=[obj.pk])
        except NoReverseMatch:
            return "—"
        return format_html('<a href="{}">Preview as a visitor or a typed context…</a>', url)

    @admin.display(description="history")
    def revisions_link(self, obj: Variant) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:content_variantrevision_changelist") + f"?variant__id__exact={obj.pk}"
        return format_html(
            '<a href="{}">{} revision(s): see who changed what, revert…</a>',
            url,
            obj.revisions.count(),
        )

    def _block_type(self, request, obj: Variant | None) -> BlockType | None:
        raw = request.POST.get("block_type") if request.method == "POST" else None
        if raw is None:
            raw = request.GET.get("block_type") or (obj.block_type_id if obj else None)
        return BlockType.objects.filter(pk=raw).first() if raw else None

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = variant_form_for(self._block_type(request, obj))
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        block_type = self._block_type(request, obj)
        content = (
            ["block_type", *block_field_names(block_type), "data"]
            if block_type
            else ["block_type", "template", "data"]
        )
        return [
            (None, {"fields": ["placement", "key", "name", "status", "priority"]}),
            (
                "Targeting",
                # The condition's words are the audience builder's, live beside its JSON.
                {"fields": ["condition", "locale", "starts_at", "ends_at"]},
            ),
            (
                f"Content — {block_type.name} block" if block_type else "Content",
                {
                    "fields": content,
                    "description": "Choose a block type and save to fill its fields, "
                    "or leave it empty and write a template.",
                },
            ),
            ("Preview and history", {"fields": ["preview_link", "revisions_link"]}),
        ]

    def save_model(self, request, obj, form, change) -> None:
        # VariantForm ran services.variant_problems, the API's rules.
        services.variant_save(variant=obj, author=_author(request), validate=False)
        for finding in services.variant_warnings(variant=obj):
            messages.warning(request, f"Condition: {finding}")

    def delete_model(self, request, obj) -> None:
        services.variant_delete(variant=obj, author=_author(request))

    def delete_queryset(self, request, queryset) -> None:
        for variant in queryset:
            services.variant_delete(variant=variant, author=_author(request))


@admin.register(VariantRevision)
class VariantRevisionAdmin(RevisionRecordAdmin):
    list_display = ["variant", "when", "author", "comment", "changed"]
    list_filter = ["variant__placement", "author"]
    search_fields = ["variant__key", "comment", "author"]
    list_select_related = ["variant__placement"]
    readonly_fields = ["variant", "state", "author", "comment", "created_at"]
    revert_service = staticmethod(services.variant_revert)
    subject_change_permission = "content.change_variant"

    @admin.display(description="state")
    def changed(self, obj: VariantRevision) -> str:
        state = obj.state
        return f"{state.get('status')} · priority {state.get('priority')} · {state.get('name')}"


@admin.register(PlacementRevision)
class PlacementRevisionAdmin(RevisionRecordAdmin):
    list_display = ["placement", "when", "author", "comment", "changed"]
    list_filter = ["placement", "author"]
    search_fields = ["placement__key", "comment", "author"]
    list_select_related = ["placement"]
    readonly_fields = ["placement", "state", "author", "comment", "created_at"]
    revert_service = staticmethod(services.placement_revert)
    subject_change_permission = "content.change_placement"
    revert_error_prefix = False  # placement_revert's refusals name the placement and revision

    @admin.display(description="state")
    def changed(self, obj: PlacementRevision) -> str:
        state = obj.state
        default = state.get("default_variant_key") or state.get("default_variant") or "none"
        return f"{state.get('name')} · default {default}"
