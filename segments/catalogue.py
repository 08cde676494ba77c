"""The attribute catalogue with what lives in the database: the declared traits (identity's
trait schema) and the segment keys, added to the language's static list (rules/catalogue.py);
and the check of a condition at save (content's variants: warnings; segments: errors)."""

from __future__ import annotations

from typing import Any

from django.apps import apps

from rules.catalogue import STATIC_ATTRIBUTES, Attribute, Finding, catalogue_findings

# identity's trait types -> the catalogue's types
_TRAIT_TYPES = {"string": "string", "number": "number", "boolean": "boolean", "date": "date"}
_TRAIT_EXAMPLES = {"string": "gold", "number": 3, "boolean": True, "date": "2026-01-31", "list": []}


def attribute_catalogue() -> list[Attribute]:
    """Every attribute conditions can read now: the static ones, one per declared trait, and the
    segment list with the current keys as its example (two queries)."""
    from .models import Segment

    TraitDefinition = apps.get_model("identity", "TraitDefinition")  # identity imports segments
    traits = [
        Attribute(
            f"profile.traits.{name}",
            _TRAIT_TYPES.get(type_, "list"),
            description or f"Declared trait ({type_}).",
            _TRAIT_EXAMPLES.get(type_, "gold"),
            "profile",
        )
        for name, type_, description in TraitDefinition.objects.values_list(
            "name", "type", "description"
        )
    ]
    keys = list(Segment.objects.filter(is_active=True).values_list("key", flat=True)[:50])
    catalogue = []
    for attribute in STATIC_ATTRIBUTES:
        if attribute.path == "profile.segments" and keys:
            attribute = Attribute(
                attribute.path,
                attribute.type,
                attribute.description + " Current keys: " + ", ".join(keys) + ".",
                keys[:2],
                attribute.scope,
            )
        catalogue.append(attribute)
    return catalogue + traits


def condition_findings(
    condition: Any, *, profile_only: bool = False, catalogue: list[Attribute] | None = None
) -> list[Finding]:
    """The catalogue's findings on a condition (see rules.catalogue.catalogue_findings)."""
    if not isinstance(condition, dict) or not condition:
        return []
    if catalogue is None:
        catalogue = attribute_catalogue()
    return catalogue_findings(condition, catalogue, profile_only=profile_only)
