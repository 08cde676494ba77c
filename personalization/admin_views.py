"""Editor tools served inside the admin: preview a variant as a visitor or a typed context.

It lives in the delivery layer because it runs the real decision path (the apps never import it).
"""

from __future__ import annotations

import json
import time
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, render

from content.models import Variant
from content.rendering import RenderError, template_compile, template_render
from core.pseudonym import pseudonymize
from rules import compile_condition, describe_condition
from segments.models import Profile
from segments.selectors import profile_document, profile_segment_keys
from segments.windows import windows_fold

from .context import DEVICES, build_request_context
from .decide import Visitor, decide
from .snapshot import holder


class PreviewForm(forms.Form):
    visitor = forms.CharField(
        required=False,
        max_length=200,
        help_text="A visitor id whose stored profile to use (e.g. demo-loyal).",
    )
    profile = forms.JSONField(
        required=False,
        help_text='Or a typed profile, e.g. {"traits": {"tier": "gold"}, "segments": ["loyal"]}.',
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )
    url = forms.CharField(required=False, max_length=2000, initial="https://shop.example/")
    device = forms.ChoiceField(
        choices=[("", "from user agent")] + [(d, d) for d in DEVICES], required=False
    )
    locale = forms.CharField(required=False, max_length=35)
    attributes = forms.JSONField(
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


def _profile_from(form: PreviewForm) -> tuple[dict[str, Any], str]:
    if form.cleaned_data.get("profile"):
        typed = form.cleaned_data["profile"]
        typed.setdefault("traits", {})
        typed.setdefault("aggregates", {})
        typed.setdefault("segments", [])
        return typed, "typed profile"
    visitor = form.cleaned_data.get("visitor")
    if visitor:
        profile = Profile.objects.filter(key=pseudonymize(visitor)).first()
        if profile is None:
            return {}, f"no stored profile for {visitor!r}: a new visitor"
        keys = profile_segment_keys(profile_ids=[profile.pk])[profile.pk]
        return profile_document(
            profile=profile, segment_keys=keys
        ), f"stored profile of {visitor!r}"
    return {}, "no profile (anonymous)"


@staff_member_required
def variant_preview(request, variant_id: int):
    variant = get_object_or_404(
        Variant.objects.select_related("placement", "block_type"), pk=variant_id
    )
    form = PreviewForm(request.GET if request.GET else None)
    result: dict[str, Any] | None = None
    if form.is_bound and form.is_valid():
        profile, profile_source = _profile_from(form)
        request_context = build_request_context(
            url=form.cleaned_data["url"],
            user_agent=request.headers.get("User-Agent", ""),
            device=form.cleaned_data["device"],
            locale=form.cleaned_data["locale"],
            attributes=form.cleaned_data["attributes"],
        )
        # The rolling windows as a decision now would fold them (plain dicts: shown as JSON).
        if profile and "windows" not in profile:  # a typed profile may state its own windows
            profile = {**profile, "windows": windows_fold(profile.get("aggregates"), time.time())}
        attributes = {"request": request_context, "profile": profile}
        condition = variant.condition or {}
        matches = compile_condition(condition)(attributes) if condition else True
        try:
            html = template_render(
                template_compile(variant.render_source()),
                {**attributes, "data": variant.data, "fields": variant.block_fields},
            )
            render_error = ""
        except RenderError as exc:
            html, render_error = "", str(exc)
        visitor_key = pseudonymize(form.cleaned_data.get("visitor") or "preview")
        decision = decide(
            snapshot=holder.get(),
            placement_keys=[variant.placement.key],
            visitor=Visitor(visitor_key, profile, personalization_allowed=True),
            request_context=request_context,
            explain=True,
        )[variant.placement.key]
        result = {
            "profile_source": profile_source,
            "condition_text": describe_condition(condition),
            "matches": matches,
            "html": html,
            "render_error": render_error,
            "decision": decision,
            "attributes_json": json.dumps(attributes, indent=2, default=str),
        }
    context = {
        **admin.site.each_context(request),
        "title": f"Preview {variant}",
        "variant": variant,
        "form": form,
        "result": result,
        "personas": ["demo-new", "demo-loyal", "demo-cart", "demo-jazz"],
    }
    return render(request, "admin/mosaic/variant_preview.html", context)
