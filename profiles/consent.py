"""The consent policy: which purposes a visitor's current consent allows (pure, no I/O).

Purposes (docs/privacy.md): `necessary` is always allowed; `analytics` (store events),
`personalization` (use the profile to choose content) and `marketing` (send segment changes out)
follow the visitor's latest choice, or MOSAIC_CONSENT_DEFAULT when they never chose.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings

NECESSARY = "necessary"
ANALYTICS = "analytics"
PERSONALIZATION = "personalization"
MARKETING = "marketing"
PURPOSES = (NECESSARY, ANALYTICS, PERSONALIZATION, MARKETING)
OPTIONAL_PURPOSES = (ANALYTICS, PERSONALIZATION, MARKETING)

OPT_OUT = "opt-out"
OPT_IN = "opt-in"


def purpose_allowed(
    consent: Mapping[str, bool] | None, purpose: str, *, default: str | None = None
) -> bool:
    """True if `purpose` may be used for a visitor whose current consent is `consent`.

    `default` is the policy for purposes the visitor never chose ("opt-out": allowed until
    refused; "opt-in": refused until granted); None reads MOSAIC_CONSENT_DEFAULT.
    """
    if purpose == NECESSARY:
        return True
    if consent and purpose in consent:
        return bool(consent[purpose])
    return (default or settings.MOSAIC_CONSENT_DEFAULT) == OPT_OUT


def consent_merge(
    current: Mapping[str, bool] | None, choices: Mapping[str, bool], *, gpc: bool
) -> dict[str, bool]:
    """The new current state: earlier choices kept, new ones applied, GPC forcing marketing off."""
    merged = {**(current or {}), **choices, NECESSARY: True}
    if gpc:
        # Global Privacy Control is a legally meaningful opt-out of sale/sharing: it wins over
        # whatever the page sent with it.
        merged[MARKETING] = False
    return {name: bool(merged[name]) for name in PURPOSES if name in merged}
