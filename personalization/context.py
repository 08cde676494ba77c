"""The request context of a decision: device, locale, page, referrer, UTM, time, custom values.

Everything here is free of the visitor's profile, so it may be used without personalization
consent ("context-free targeting").
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

_MOBILE = re.compile(r"Mobi|iPhone|Android.*Mobile|Windows Phone", re.I)
_TABLET = re.compile(r"iPad|Tablet|Android(?!.*Mobile)", re.I)
DEVICES = ("mobile", "tablet", "desktop")
UTM_KEYS = ("source", "medium", "campaign", "term", "content")
UTM_PARAMETERS = tuple((key, f"utm_{key}") for key in UTM_KEYS)  # (key, its query parameter)


def device_from_user_agent(user_agent: str) -> str:
    if not user_agent:  # neither pattern matches an empty string
        return "desktop"
    if len(user_agent) <= _REMEMBERED_LENGTH:
        return _device_remembered(user_agent)
    return _device(user_agent)


# Browsers send a handful of User-Agent strings, on every decide call: their device is
# remembered per process (bounded in entries and in length: the header is the caller's) rather
# than searched for again (the two searches were a few µs of each call; docs/benchmarks.md).
_REMEMBERED_LENGTH = 512


def _device(user_agent: str) -> str:
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


_device_remembered = functools.lru_cache(maxsize=2048)(_device)


def build_request_context(
    *,
    url: str = "",
    referrer: str = "",
    user_agent: str = "",
    accept_language: str = "",
    locale: str = "",
    device: str = "",
    utm: dict[str, str] | None = None,
    attributes: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    parts = urlsplit(url) if url else None
    query = parse_qs(parts.query) if parts else {}
    utm_values = {k: query[name][0] for k, name in UTM_PARAMETERS if name in query} if query else {}
    if utm:
        utm_values.update(utm)
    if not locale and accept_language:
        locale = accept_language.split(",")[0].split(";")[0].strip()
    moment = now or datetime.now(UTC)
    return {
        "url": url,
        "path": parts.path if parts else "",
        "host": parts.hostname or "" if parts else "",
        "referrer": referrer,
        "utm": utm_values,
        "locale": locale,
        "language": locale.split("-")[0].lower() if locale else "",
        "device": device if device in DEVICES else device_from_user_agent(user_agent),
        "time": moment.isoformat(),
        "hour": moment.hour,
        "weekday": moment.isoweekday(),
        "attributes": attributes or {},
    }
