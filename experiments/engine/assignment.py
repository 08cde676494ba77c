"""Mosaic's experiment assignment: a compiled experiment spec and the hot-path ``assign``.

An ``ExperimentSpec`` is validated and compiled once (when the snapshot is built), so that
``assign`` only hashes the unit id and scans a handful of ranges. Assignments are exactly those
GrowthBook gives for the same key, seed, weights, coverage, hash version and namespace, so an
experiment keeps its assignments when it moves between the two systems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .bucketing import get_bucket_ranges, is_valid_weights
from .hashing import fnv1a32, fnv1a32_extend

__all__ = ["Assignment", "ExperimentSpec", "assign"]

SUPPORTED_HASH_VERSIONS = (1, 2)


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """An experiment as the bucketing engine needs it; invalid specs raise ``ValueError``.

    Unlike GrowthBook, which silently falls back to equal weights or skips the experiment, a
    spec refuses what GrowthBook would not run as written: fewer than two arms, duplicate arm
    keys, weights that are not one non-negative number per arm summing to 1 (within 0.01),
    coverage outside [0, 1], an unknown hash version or a malformed namespace. A misconfigured
    experiment should fail where it is saved, not quietly split traffic another way.

    An empty ``seed`` means the experiment key, as in GrowthBook (``seed or key``).
    """

    key: str
    seed: str
    arm_keys: tuple[str, ...]
    weights: tuple[float, ...] | None
    coverage: float = 1.0
    hash_version: int = 2
    namespace: tuple[str, float, float] | None = None
    bucket_ranges: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)
    # FNV state after the seed, so version 2 hashes only the unit id per request.
    _seed_state: int = field(init=False, repr=False, compare=False)
    # The namespace hash is fnv(unit_id + "__" + name); the suffix is built once.
    _namespace_suffix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError("experiment key must be a non-empty string")
        if not isinstance(self.seed, str):
            raise ValueError(f"experiment {self.key!r}: seed must be a string")
        if not self.seed:
            object.__setattr__(self, "seed", self.key)

        arm_keys = tuple(self.arm_keys)
        if len(arm_keys) < 2:
            raise ValueError(f"experiment {self.key!r}: needs at least two arms")
        if len(set(arm_keys)) != len(arm_keys):
            raise ValueError(f"experiment {self.key!r}: duplicate arm keys {arm_keys!r}")
        object.__setattr__(self, "arm_keys", arm_keys)

        if self.weights is not None:
            weights = tuple(self.weights)
            if not is_valid_weights(weights, len(arm_keys)):
                raise ValueError(
                    f"experiment {self.key!r}: weights {weights!r} must be one non-negative "
                    f"number per arm ({len(arm_keys)}) summing to 1"
                )
            object.__setattr__(self, "weights", weights)

        coverage = self.coverage
        if isinstance(coverage, bool) or not isinstance(coverage, int | float):
            raise ValueError(f"experiment {self.key!r}: coverage must be a number")
        if not (math.isfinite(coverage) and 0 <= coverage <= 1):
            raise ValueError(f"experiment {self.key!r}: coverage {coverage!r} not in [0, 1]")

        if self.hash_version not in SUPPORTED_HASH_VERSIONS or isinstance(self.hash_version, bool):
            raise ValueError(
                f"experiment {self.key!r}: hash_version {self.hash_version!r} not in "
                f"{SUPPORTED_HASH_VERSIONS}"
            )

        suffix = ""
        if self.namespace is not None:
            namespace = _validated_namespace(self.key, self.namespace)
            object.__setattr__(self, "namespace", namespace)
            suffix = "__" + namespace[0]
        object.__setattr__(self, "_namespace_suffix", suffix)

        # Weights were validated above, so None (equal weights) is the only fallback taken here.
        ranges = get_bucket_ranges(len(arm_keys), coverage, self.weights)
        object.__setattr__(self, "bucket_ranges", tuple(ranges))
        object.__setattr__(self, "_seed_state", fnv1a32(self.seed))


def _validated_namespace(key: str, namespace: object) -> tuple[str, float, float]:
    try:
        name, start, end = namespace
    except (TypeError, ValueError):
        raise ValueError(
            f"experiment {key!r}: namespace must be (name, start, end), got {namespace!r}"
        ) from None
    if not isinstance(name, str) or not name:
        raise ValueError(f"experiment {key!r}: namespace name must be a non-empty string")
    numbers_ok = all(
        isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
        for x in (start, end)
    )
    if not numbers_ok or not 0 <= start <= end <= 1:
        raise ValueError(
            f"experiment {key!r}: namespace range must satisfy 0 <= start <= end <= 1, "
            f"got ({start!r}, {end!r})"
        )
    return (name, float(start), float(end))


@dataclass(frozen=True, slots=True)
class Assignment:
    """The arm a unit gets in an experiment; ``bucket`` is its hash value in [0, 1)."""

    experiment_key: str
    arm_index: int
    arm_key: str
    bucket: float


def assign(spec: ExperimentSpec, unit_id: str) -> Assignment | None:
    """The unit's arm, or ``None`` when ``unit_id`` is empty or the unit is outside the
    experiment's namespace slice or coverage.

    Deterministic across processes and hosts: only FNV-1a hashing, never Python's ``hash()``.
    Same result as ``choose_variation(hash(spec.seed, unit_id, spec.hash_version),
    spec.bucket_ranges)`` after ``in_namespace``, computed with the seed's hash state reused.
    """
    if not unit_id:
        return None

    namespace = spec.namespace
    if namespace is not None:
        n = (fnv1a32(unit_id + spec._namespace_suffix) % 1000) / 1000
        if not namespace[1] <= n < namespace[2]:
            return None

    if spec.hash_version == 2:
        # str() of an int is ASCII digits: the second pass takes fnv1a32's fast path.
        n = (fnv1a32(str(fnv1a32_extend(spec._seed_state, unit_id))) % 10000) / 10000
    else:
        n = (fnv1a32(unit_id + spec.seed) % 1000) / 1000

    for index, (start, end) in enumerate(spec.bucket_ranges):
        if start <= n < end:
            return Assignment(spec.key, index, spec.arm_keys[index], n)
    return None
