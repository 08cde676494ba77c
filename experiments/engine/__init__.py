"""The pure experiment core: GrowthBook-compatible deterministic bucketing and assignment.

Standard library only (no Django, no Celery), so it runs on the request hot path and in tests
without a database. ``hash``, ``get_bucket_ranges``, ``choose_variation``, ``in_namespace`` and
``get_equal_weights`` follow GrowthBook's SDK semantics and pass its conformance cases;
``ExperimentSpec`` and ``assign`` are Mosaic's compiled form built on them.
"""

from .assignment import Assignment, ExperimentSpec, assign
from .bucketing import choose_variation, get_bucket_ranges, get_equal_weights, is_valid_weights
from .hashing import fnv1a32, hash, in_namespace

__all__ = [
    "Assignment",
    "ExperimentSpec",
    "assign",
    "choose_variation",
    "fnv1a32",
    "get_bucket_ranges",
    "get_equal_weights",
    "hash",
    "in_namespace",
    "is_valid_weights",
]
