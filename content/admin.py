"""Admin for editors: placements with their variants, and every variant on its own."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from .models import Placement, Variant
from .rendering import template_check


class VariantForm(forms.ModelForm):
    class Meta:
        model = Variant
        fields = [
            "placement",
            "key",
            "name",
            "status",
            "priority",
            "condition",
            "locale",
            "starts_at",
            "ends_at",
            "template",
            "data",
        ]

    def clean_template(self) -> str:
        source = self.cleaned_data.get("template", "")
        problem = template_check(source)
        if problem:
            raise forms.ValidationError(f"Template error at {problem}")
        return source

    def clean(self):
        cleaned = super().clean()
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "Must be after the start.")
        return cleaned


class VariantInline(admin.TabularInline):
    model = Variant
    form = VariantForm
    extra = 0
    fields = ["key", "name", "status", "priority", "locale", "starts_at", "ends_at"]
    show_change_link = True


class PlacementForm(forms.ModelForm):
    class Meta:
        model = Placement
        fields = ["key", "name", "description", "default_variant"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["default_variant"]
        field.queryset = (
            Variant.objects.filter(placement=self.instance)
            if self.instance.pk
            else Variant.objects.none()
        )
        field.help_text = "Served when nothing else matches and whenever anything fails. " + (
            "Choose one of this placement's variants."
            if self.instance.pk
            else "Save the placement with its variants first, then choose the default."
        )


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    form = PlacementForm
    list_display = ["key", "name", "default_variant", "live_variants", "updated_at"]
    search_fields = ["key", "name", "description"]
    inlines = [VariantInline]

    @admin.display(description="live variants")
    def live_variants(self, obj: Placement) -> int:
        return obj.variants.filter(status="live").count()


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    form = VariantForm
    list_display = ["__str__", "name", "status", "priority", "locale", "starts_at", "ends_at"]
    list_filter = ["status", "placement", "locale"]
    search_fields = ["key", "name", "placement__key"]
    list_select_related = ["placement"]
    fieldsets = [
        (None, {"fields": ["placement", "key", "name", "status", "priority"]}),
        ("Targeting", {"fields": ["condition", "locale", "starts_at", "ends_at"]}),
        ("Content", {"fields": ["template", "data"]}),
    ]
