"""Mosaic's rule engine: the condition language, compiled once and evaluated on the request path.

Pure Python (plus RE2); imports nothing from Django or Celery, so it can be tested and benchmarked
on its own.

Public API::

    fn = compile_condition(condition, saved_groups=None)  # -> fn(attributes, saved_groups=None)
    evaluate(condition, attributes, saved_groups=None)    # compiled forms cached (bounded LRU)
    validate_condition(condition) -> list[ConditionError] # every problem, with its JSONPath
    describe_condition(condition) -> str                  # "country is one of FR, DE and ..."
    condition_fields(condition) -> set[str]               # attribute paths the condition reads
    fn(attributes, now=datetime_or_epoch)                 # evaluate at a given instant
    with evaluation_clock(now) as clock: fn(attributes)   # clock.next_change: when it may flip
    class V(PathView): def path_get(self, rest): ...      # a value resolving the rest of a path

Semantics are GrowthBook's ``evalCondition`` (MongoDB-style operators, dotted paths, ``$in`` over
an array attribute meaning "any item is in the list", deep equality for arrays and objects,
GrowthBook's padded version comparison, ``$inGroup``/``$notInGroup`` against saved groups), with
these decisions:

* Strict typing (the three deliberate deviations from the shared suite): ``$gt/$gte/$lt/$lte`` only
  order a number with a number or a string with a string, and a missing attribute never satisfies
  them. Version operators likewise need a string attribute. Booleans are never numbers: ``True``
  does not equal, order with, or belong to a list holding ``1``.
* Dates: when an ordering operand is an ISO-8601 date or date-time string and the attribute is one
  too (or a ``datetime``/``date``), they compare as UTC instants; a naive time is UTC, a date alone
  is midnight UTC. Other strings keep plain (JavaScript UTF-16) string order.
* Equality of objects ignores key order (JSON objects are unordered); ``$eq`` on an array or object
  compares deeply, like a literal value does.
* Regular expressions run on RE2 in linear time, so no input can stall a decision. Patterns RE2
  refuses (lookarounds, backreferences) are rejected: ``validate_condition`` reports them, and the
  evaluator compiles a condition holding one into a function that never matches. No fallback to
  ``re``. See :mod:`rules.regex`.
* Fail closed: a condition the evaluator cannot run as written (unknown operator, refused regex,
  ``$or`` without a list) never matches as a whole, so a ``$not`` above the fault cannot turn it
  into a match. Mosaic validates before storing, so this is a safety net.
* Time: ``{"last_add_to_cart_at": {"$lte": {"$ago": "10m"}}}`` compares an instant attribute
  (ISO string, epoch seconds or milliseconds, datetime) with ``now`` minus (``$ago``) or plus
  (``$ahead``) a duration (s, m, h, d, w; "1h30m"). ``now`` is the evaluation's: passed to the
  compiled function, set by ``evaluation_clock``, else the wall clock at the call. See
  :mod:`rules.timing` and docs/conditions.md.
* Saved groups map a group id to a list of members (or ``{"type": "list", "values": [...]}``). Pass
  them at compile time (memberships are precomputed) or to the compiled function per call (they
  replace the compile-time ones for that call; each list is indexed once per list object, so treat
  the lists as immutable). An absent group has no members.
"""

from .compiler import compile_condition, evaluate, is_time_dependent
from .describe import condition_fields, describe_condition
from .timing import evaluation_clock, instant_seconds
from .validation import ConditionError, validate_condition
from .values import PathView

__all__ = [
    "ConditionError",
    "PathView",
    "compile_condition",
    "condition_fields",
    "describe_condition",
    "evaluate",
    "evaluation_clock",
    "instant_seconds",
    "is_time_dependent",
    "validate_condition",
]
