"""Admin for editors: block types, placements with their variants, revisions with revert."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

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


def _placement_revert(modeladmin: admin.ModelAdmin, request, revision: PlacementRevision) -> None:
    """Revert through the service; a refusal is a message for the editor, never a 500."""
    try:
        placement = services.placement_revert(revision=revision, author=_author(request))
    except ValidationError as exc:
        modeladmin.message_user(request, " ".join(exc.messages), messages.ERROR)
        return
    modeladmin.message_user(
        request,
        f'Placement "{placement}" is back to its revision of '
        f"{revision.created_at:%Y-%m-%d %H:%M:%S}; "
        "the revert is itself recorded in the history.",
        messages.SUCCESS,
    )


@admin.register(BlockType)
class BlockTypeAdmin(admin.ModelAdmin):
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


class VariantInline(admin.TabularInline):
    model = Variant
    form = VariantForm
    extra = 0
    fields = ["key", "name", "status", "priority", "locale", "block_type"]
    show_change_link = True


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
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
            obj.delete()
        for variant in instances:
            services.variant_save(variant=variant, author=_author(request), comment="Edited inline")
        formset.save_m2m()

    def get_readonly_fields(self, request, obj=None):
        # Pages use the key, and a revision does not restore it: fixed once created.
        return ["key"] if obj is not None else []

    def save_model(self, request, obj, form, change) -> None:
        services.placement_save(
            placement=obj, author=_author(request), comment="" if change else "Created"
        )
        if change and obj.default_variant_id is None and obj.variants.exists():
            messages.warning(request, "This placement has no default variant yet.")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context["placement_history"] = selectors.placement_history(placement=obj)
            context["placement_revisions_url"] = (
                reverse("admin:content_placementrevision_changelist")
                + f"?placement__id__exact={obj.pk}"
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        revert = path(
            "<path:object_id>/revert/<int:revision_id>/",
            self.admin_site.admin_view(self.revert_view),
            name="content_placement_revert",
        )
        return [revert, *super().get_urls()]

    def revert_view(self, request, object_id: str, revision_id: int):
        """POST from a history row's button on the change page: revert, then back to the page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        placement = self.get_object(request, unquote(object_id))
        if placement is None:
            raise Http404("No such placement.")
        if not self.has_change_permission(request, placement):
            raise PermissionDenied
        revision = get_object_or_404(PlacementRevision, pk=revision_id, placement=placement)
        _placement_revert(self, request, revision)
        return HttpResponseRedirect(reverse("admin:content_placement_change", args=[placement.pk]))


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
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
                {"fields": ["condition", "condition_summary", "locale", "starts_at", "ends_at"]},
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
        services.variant_save(variant=obj, author=_author(request))


@admin.register(VariantRevision)
class VariantRevisionAdmin(admin.ModelAdmin):
    list_display = ["variant", "created_at", "author", "comment", "changed"]
    list_filter = ["variant__placement", "author"]
    search_fields = ["variant__key", "comment", "author"]
    list_select_related = ["variant__placement"]
    readonly_fields = ["variant", "state", "author", "comment", "created_at"]
    actions = ["revert"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="state")
    def changed(self, obj: VariantRevision) -> str:
        state = obj.state
        return f"{state.get('status')} · priority {state.get('priority')} · {state.get('name')}"

    def has_revert_permission(self, request) -> bool:
        return request.user.has_perm("content.change_variant")

    @admin.action(description="Revert the variant to the selected revision", permissions=["revert"])
    def revert(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one revision to revert to.", messages.ERROR)
            return
        revision = queryset.get()
        try:
            variant = services.variant_revert(revision=revision, author=_author(request))
        except ValidationError as exc:  # a refusal is a message for the editor, never a 500
            self.message_user(
                request,
                f"{revision.variant} cannot go back to the revision of "
                f"{revision.created_at:%Y-%m-%d %H:%M:%S}: " + " ".join(exc.messages),
                messages.ERROR,
            )
            return
        self.message_user(request, f"{variant} reverted; the revert is itself a new revision.")


@admin.register(PlacementRevision)
class PlacementRevisionAdmin(admin.ModelAdmin):
    list_display = ["placement", "when", "author", "comment", "changed"]
    list_filter = ["placement", "author"]
    search_fields = ["placement__key", "comment", "author"]
    list_select_related = ["placement"]
    readonly_fields = ["placement", "state", "author", "comment", "created_at"]
    actions = ["revert"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_revert_permission(self, request) -> bool:
        return request.user.has_perm("content.change_placement")

    @admin.display(description="when (UTC)", ordering="created_at")
    def when(self, obj: PlacementRevision) -> str:
        # To the second, as the revert comments and the placement page's history name revisions.
        return f"{obj.created_at:%Y-%m-%d %H:%M:%S}"

    @admin.display(description="state")
    def changed(self, obj: PlacementRevision) -> str:
        state = obj.state
        default = state.get("default_variant_key") or state.get("default_variant") or "none"
        return f"{state.get('name')} · default {default}"

    @admin.action(
        description="Revert the placement to the selected revision", permissions=["revert"]
    )
    def revert(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one revision to revert to.", messages.ERROR)
            return
        _placement_revert(self, request, queryset.get())
