"""Preview a variant for a context without saving anything: does its condition match, what does
it render, what data would decide carry, and what would decide serve now. Used by the admin's
preview page and the management API's preview action."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from content.models import Variant
from content.rendering import RenderError, template_compile, template_render
from core.pseudonym import pseudonymize
from profiles.models import Profile
from profiles.selectors import profile_document
from rules import compile_condition, describe_condition
from segments.selectors import profile_segment_keys
from segments.windows import windows_fold

from .decide import Decision, Visitor, decide
from .snapshot import block_data, holder


@dataclass(frozen=True, slots=True)
class PreviewResult:
    profile_source: str
    condition_text: str
    matches: bool
    html: str
    render_error: str
    data: dict[str, Any]
    decision: Decision
    attributes: dict[str, Any]

    @property
    def attributes_json(self) -> str:
        return json.dumps(self.attributes, indent=2, default=str)

    def __getitem__(self, name: str):
        # result["matches"] as well as result.matches: the admin's preview context was a dict.
        return getattr(self, name)


def preview_profile(
    *, visitor: str | None, typed: dict[str, Any] | None
) -> tuple[dict[str, Any], str]:
    """The profile to preview with: a typed one, a stored visitor's (looked up by its
    pseudonym), or none; and where it came from, in words."""
    if typed:
        typed = dict(typed)
        typed.setdefault("traits", {})
        typed.setdefault("aggregates", {})
        typed.setdefault("segments", [])
        return typed, "typed profile"
    if visitor:
        profile = Profile.objects.filter(key=pseudonymize(visitor)).first()
        if profile is None:
            return {}, f"no stored profile for {visitor!r}: a new visitor"
        keys = profile_segment_keys(profile_ids=[profile.pk])[profile.pk]
        return profile_document(
            profile=profile, segment_keys=keys
        ), f"stored profile of {visitor!r}"
    return {}, "no profile (anonymous)"


def variant_preview_run(
    *,
    variant: Variant,
    profile: dict[str, Any],
    profile_source: str,
    request_context: dict[str, Any],
    visitor: str | None,
) -> PreviewResult:
    """Evaluate and render `variant` (draft or live) for the context, and run the real decision
    for its placement; nothing is stored or logged."""
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
    visitor_key = pseudonymize(visitor or "preview")
    decision = decide(
        snapshot=holder.get(),
        placement_keys=[variant.placement.key],
        visitor=Visitor(visitor_key, profile, personalization_allowed=True),
        request_context=request_context,
        explain=True,
    )[variant.placement.key]
    return PreviewResult(
        profile_source=profile_source,
        condition_text=describe_condition(condition),
        matches=matches,
        html=html,
        render_error=render_error,
        data=block_data(variant.data, variant.block_fields if variant.block_type_id else None),
        decision=decision,
        attributes=attributes,
    )
