"""Reads for identity: trait definitions and visitor resolution through aliases."""

from __future__ import annotations

from profiles.models import Profile

from .models import TraitDefinition, VisitorAlias


def trait_definitions() -> dict[str, str]:
    """name → type of every declared trait (a small table, read once per call)."""
    return dict(TraitDefinition.objects.values_list("name", "type"))


def trait_definition_rows() -> list[tuple]:
    """(name, type, min_value, max_value, allowed_values, pattern) of every declared trait."""
    return list(
        TraitDefinition.objects.values_list(
            "name", "type", "min_value", "max_value", "allowed_values", "pattern"
        )
    )


def profile_resolve(*, profile_key: str) -> Profile | None:
    """The profile a visitor key means now: its own, or the one it was merged into."""
    profile = Profile.objects.filter(key=profile_key).first()
    if profile is not None:
        return profile
    alias = VisitorAlias.objects.select_related("profile").filter(alias_key=profile_key).first()
    return alias.profile if alias else None


def visitor_storage_allowed(*, visitor: str) -> bool:
    """Whether identify and traits may store anything for this visitor (docs/privacy.md).

    Under MOSAIC_CONSENT_DEFAULT=opt-in, only with a granted personalization or analytics
    consent (through its alias if merged): a visitor who never chose gets no profile, link or
    trait. Under opt-out, as before: stored, and the visitor's refusals govern use (decide reads
    no profile without personalization consent)."""
    from django.conf import settings

    from core.pseudonym import pseudonymize
    from profiles.consent import ANALYTICS, OPT_IN, PERSONALIZATION, purpose_allowed

    if settings.MOSAIC_CONSENT_DEFAULT != OPT_IN:
        return True
    profile = profile_resolve(profile_key=pseudonymize(visitor))
    consent = profile.consent if profile is not None else None
    return purpose_allowed(consent, PERSONALIZATION) or purpose_allowed(consent, ANALYTICS)
