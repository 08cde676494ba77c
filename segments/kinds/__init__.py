"""Segment kinds: what decides a segment's members, one module per kind, in a small registry.

A kind computes, for one run, the set of member profile ids (and optionally a score per member
and metrics of its own); `segments.runs` does everything else (run record, lease, batches,
atomic swap, history, triggers, cached documents). A kind is offered (admin, API) only once its
module has registered it, so the model-based kinds (issue #16) appear when their modules do:

    from segments.kinds import KindResult, SegmentKindSpec, register

    class ClusterKind(SegmentKindSpec):
        key = "cluster"
        label = "Clustering"
        def clean_config(self, config): ...      # raise ConfigError("path", "message")
        def compute(self, segment, *, progress): # -> KindResult
            ...

    register(ClusterKind())

and one import line in `SegmentsConfig.ready` (segments/apps.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A segment's configuration is refused; `field` is the path of the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(slots=True)
class KindResult:
    """What a kind computed for one run."""

    members: set[int]
    scanned: int
    # Per-member score (e.g. a propensity), stored on the membership; None: the kind has none.
    scores: dict[int, float] | None = None
    # Kind-specific figures kept on the run record (JSON-ready).
    metrics: dict[str, Any] = field(default_factory=dict)


# progress(scanned_so_far): called by a kind after each bounded batch it scanned. It renews
# the run's lease and records progress; it raises if the run lost its lease.
Progress = Callable[[int], None]


class SegmentKindSpec:
    """Base class of a kind. Subclasses set `key`, `label` and implement `compute`."""

    key: str = ""
    label: str = ""
    # Kept current by ingestion between runs (condition segments): the real-time path.
    realtime: bool = False
    # Runs after every other kind (its result depends on theirs: the default segment).
    runs_last: bool = False
    # Place in the kind menus (lower first).
    position: int = 50

    def clean_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The validated config; raise ConfigError naming the field. Default: must be empty."""
        if config:
            raise ConfigError("config", f"Segments of kind {self.key!r} take no configuration.")
        return {}

    def compute(self, segment, *, progress: Progress) -> KindResult:
        raise NotImplementedError

    def metrics_for_members(self, segment, member_ids: set[int]) -> dict[str, Any]:
        """Extra metrics (JSON) once members are known; default none."""
        return {}


_REGISTRY: dict[str, SegmentKindSpec] = {}


def register(kind: SegmentKindSpec) -> SegmentKindSpec:
    if not kind.key or not kind.label:
        raise ValueError("a segment kind needs a key and a label")
    _REGISTRY[kind.key] = kind
    return kind


def get_kind(key: str) -> SegmentKindSpec:
    """The registered kind; KeyError for a kind no module registered (not offered)."""
    return _REGISTRY[key]


def registered_kinds() -> list[SegmentKindSpec]:
    return list(_REGISTRY.values())


def kind_choices() -> list[tuple[str, str]]:
    """Choices of Segment.kind: only the registered kinds (a callable, so no migration each)."""
    ordered = sorted(_REGISTRY.values(), key=lambda kind: (kind.position, kind.key))
    return [(kind.key, kind.label) for kind in ordered]
