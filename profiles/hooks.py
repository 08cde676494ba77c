"""How the apps above profiles take part in a profile's refresh without profiles importing them.

A profile's document (what decide reads) holds its segment keys, and a change to a profile
(new events, traits, consent) must re-evaluate its condition segments before the document is
rewritten. Segments depend on profiles, not the reverse: `SegmentsConfig.ready()` registers
both here, so `profiles_refresh` and `profile_cache_write` call them without an import of
segments (the import-linter contract "profiles-ingestion-segments" in pyproject.toml).
Without registrations (a script that never loaded the segments app) a refresh writes documents
with no segment keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Refresher(Protocol):
    def __call__(
        self, *, profile_ids: list[int], profiles: list[Any] | None, now: float | None
    ) -> None: ...


#: Called by profiles_refresh before the documents are rewritten (segments: memberships).
_refreshers: list[Refresher] = []
#: profile ids -> {profile id: segment keys}: the document's `segments` (segments registers it).
_segment_keys: list[Callable[[list[int]], dict[int, list[str]]]] = []


def refresher_register(refresher: Refresher) -> None:
    if refresher not in _refreshers:
        _refreshers.append(refresher)


def segment_keys_register(reader: Callable[[list[int]], dict[int, list[str]]]) -> None:
    _segment_keys[:] = [reader]


def refreshers() -> tuple[Refresher, ...]:
    return tuple(_refreshers)


def segment_keys(profile_ids: list[int]) -> dict[int, list[str]]:
    """Each profile's segment keys, through the registered reader (none: no segments)."""
    if not _segment_keys:
        return {pid: [] for pid in profile_ids}
    return _segment_keys[0](profile_ids)
