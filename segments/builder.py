"""The audience builder of the admin: a condition field's widget that edits the JSON through
attribute / operator / value pickers with nested AND / OR / NOR and NOT groups, beside the raw JSON
(still editable) and its plain-language description; and the check it calls as the condition
changes (problems, catalogue findings and, for segments, how many stored profiles match)."""

from __future__ import annotations

import time
from dataclasses import asdict

from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.forms import PositionedJSONField
from core.parsers import LoneSurrogate, json_loads
from profiles.models import Profile
from rules import compile_condition, describe_condition, evaluation_clock, validate_condition
from rules.catalogue import OPERATORS

from .catalogue import attribute_catalogue, condition_findings
from .models import Segment
from .services import _evaluation_attributes, _EvaluationPlan

# Stored profiles evaluated for the live count, at most: beyond, the count says it is partial.
COUNT_MAX_PROFILES = 20_000
BODY_MAX_BYTES = 100_000


class ConditionBuilderWidget(forms.Textarea):
    """The raw JSON textarea, with the builder drawn above it by audience-builder.js.
    `scope`: "variant" (request and profile attributes) or "segment" (profile only; live count)."""

    template_name = "segments/condition_builder.html"

    def __init__(self, scope: str = "variant", attrs=None):
        super().__init__(attrs={"rows": 6, "cols": 70, **(attrs or {})})
        self.scope = scope

    class Media:
        js = ["segments/audience-builder.js"]
        css = {"all": ["segments/audience-builder.css"]}

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        attributes = [
            asdict(a)
            for a in attribute_catalogue()
            if self.scope != "segment" or a.scope == "profile"
        ]
        context["builder"] = {
            "catalogue_id": f"{context['widget']['attrs'].get('id', name)}-catalogue",
            "scope": self.scope,
            "check_url": reverse("mosaic-condition-check"),
            "catalogue": {
                "attributes": attributes,
                "operators": [{"name": o.name, "meaning": o.meaning} for o in OPERATORS],
            },
        }
        return context


class ConditionField(PositionedJSONField):
    """A condition's form field: positioned JSON errors and the builder widget."""

    def __init__(self, *, scope: str = "variant", **kwargs):
        kwargs["widget"] = ConditionBuilderWidget(scope=scope)
        super().__init__(**kwargs)


def condition_match_count(condition: dict) -> dict:
    """How many stored profiles the condition matches, evaluated as a segment recompute evaluates
    it (the same attributes, windows folded and relative instants read at one `now`), over at
    most COUNT_MAX_PROFILES of them."""
    matches = compile_condition(condition)
    # The recompute's own evaluation (segments.services), so the count is what a save would give.
    plan = _EvaluationPlan.of([Segment(condition=condition)], [matches])
    now = time.time()
    matched = evaluated = 0
    rows = Profile.objects.only("pk", "traits", "aggregates", "consent").order_by("pk")
    with evaluation_clock(now):
        for profile in rows[:COUNT_MAX_PROFILES].iterator(chunk_size=2000):
            evaluated += 1
            if matches(_evaluation_attributes(profile=profile, plan=plan, now=now)):
                matched += 1
    total = evaluated if evaluated < COUNT_MAX_PROFILES else Profile.objects.count()
    return {"matched": matched, "evaluated": evaluated, "total": total}


@staff_member_required
@require_POST
def condition_check(request):
    """POST {"condition": {...}, "scope": "variant"|"segment"} -> its problems (JSON paths), its
    description, the catalogue's findings and, for a valid segment condition, the live count."""
    if len(request.body) > BODY_MAX_BYTES:
        return JsonResponse({"errors": [{"field": "body", "message": "Too large."}]}, status=400)
    try:
        body = json_loads(request.body)  # refuses lone surrogates, as the API's parser
    except LoneSurrogate as exc:
        return JsonResponse({"errors": [{"field": exc.field, "message": str(exc)}]}, status=400)
    except (ValueError, RecursionError):
        return JsonResponse({"errors": [{"field": "body", "message": "Not JSON."}]}, status=400)
    if not isinstance(body, dict):
        return JsonResponse(
            {"errors": [{"field": "body", "message": "Not an object."}]}, status=400
        )
    condition, scope = body.get("condition"), body.get("scope")
    problems = [str(p) for p in validate_condition(condition)] if condition != {} else []
    answer: dict = {"problems": problems, "description": "", "findings": [], "count": None}
    if problems:
        return JsonResponse(answer)
    answer["description"] = describe_condition(condition)
    segment = scope == "segment"
    answer["findings"] = [
        {"path": f.path, "severity": f.severity, "message": f.message}
        for f in condition_findings(condition, profile_only=segment)
    ]
    # Counting needs a segment editor's right: counts over arbitrary conditions could otherwise
    # be used to probe what is stored about visitors.
    may_count = request.user.has_perm("segments.add_segment") or request.user.has_perm(
        "segments.change_segment"
    )
    if segment and may_count and not any(f["severity"] == "error" for f in answer["findings"]):
        answer["count"] = condition_match_count(condition)
    return JsonResponse(answer)
