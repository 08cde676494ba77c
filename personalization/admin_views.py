"""Editor tools served inside the admin: preview a variant as a visitor or a typed context.

It lives in the delivery layer because it runs the real decision path (the apps never import it).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from content.models import Variant
from core.forms import PositionedJSONField

from .context import DEVICES, build_request_context
from .preview import preview_profile, variant_preview_run


class PreviewForm(forms.Form):
    visitor = forms.CharField(
        required=False,
        max_length=200,
        help_text="A visitor id whose stored profile to use (e.g. demo-loyal).",
    )
    profile = PositionedJSONField(
        required=False,
        help_text='Or a typed profile, e.g. {"traits": {"tier": "gold"}, "segments": ["loyal"]}.',
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )
    url = forms.CharField(required=False, max_length=2000, initial="https://shop.example/")
    device = forms.ChoiceField(
        choices=[("", "from user agent")] + [(d, d) for d in DEVICES], required=False
    )
    locale = forms.CharField(required=False, max_length=35)
    attributes = PositionedJSONField(
        required=False,
        help_text="Custom request attributes (request.attributes.*).",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )

    def clean_profile(self):
        value = self.cleaned_data.get("profile")
        if value not in (None, "") and not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
        return value or None

    def clean_attributes(self):
        value = self.cleaned_data.get("attributes")
        if value not in (None, "") and not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
        return value or {}


@staff_member_required
def variant_preview(request, variant_id: int):
    if not request.user.has_perm("content.view_variant"):
        raise PermissionDenied  # a role without content (the privacy officer...)
    variant = get_object_or_404(
        Variant.objects.select_related("placement", "block_type"), pk=variant_id
    )
    form = PreviewForm(request.GET if request.GET else None)
    result = None
    if form.is_bound and form.is_valid():
        profile, profile_source = preview_profile(
            visitor=form.cleaned_data.get("visitor"), typed=form.cleaned_data.get("profile")
        )
        request_context = build_request_context(
            url=form.cleaned_data["url"],
            user_agent=request.headers.get("User-Agent", ""),
            device=form.cleaned_data["device"],
            locale=form.cleaned_data["locale"],
            attributes=form.cleaned_data["attributes"],
        )
        result = variant_preview_run(
            variant=variant,
            profile=profile,
            profile_source=profile_source,
            request_context=request_context,
            visitor=form.cleaned_data.get("visitor"),
        )
    context = {
        **admin.site.each_context(request),
        "title": f"Preview {variant}",
        "variant": variant,
        "form": form,
        "result": result,
        "personas": ["demo-new", "demo-loyal", "demo-cart", "demo-jazz"],
    }
    return render(request, "admin/mosaic/variant_preview.html", context)
