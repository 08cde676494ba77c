"""The attribute catalogue: what conditions can read, with types, descriptions and examples, and
every operator of the language; and the check of a condition against it (paths outside the
catalogue, values of the wrong type, request attributes where only the profile exists).

Pure data and functions: the Django side (segments/catalogue.py) adds the attributes that live in
the database (declared traits, segment keys) and applies the check at save.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .operators import LOGICAL_LISTS, MEMBERSHIP, ORDERING, is_operator_object
from .values import is_number, parse_instant

TYPES = ("string", "number", "boolean", "date", "list", "object")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One path conditions can read. A path ending in ".*" stands for any key under it."""

    path: str
    type: str  # one of TYPES
    description: str
    example: Any
    scope: str  # "request" (context-free, no consent needed) or "profile"

    def matches(self, path: str) -> bool:
        if self.path.endswith(".*"):
            return path.startswith(self.path[:-1]) and len(path) > len(self.path) - 1
        return path == self.path


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    operand: str
    meaning: str
    example: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem with one attribute path of a condition: "error" refuses the save, "warning"
    is shown beside it."""

    path: str
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _r(path: str, type_: str, description: str, example: Any) -> Attribute:
    return Attribute(path, type_, description, example, "request")


def _p(path: str, type_: str, description: str, example: Any) -> Attribute:
    return Attribute(path, type_, description, example, "profile")


UTM_KEYS = ("source", "medium", "campaign", "term", "content")

REQUEST_ATTRIBUTES: tuple[Attribute, ...] = (
    _r(
        "request.url", "string", "The page's full URL.", "https://shop.example/jazz?utm_source=mail"
    ),
    _r("request.path", "string", "The URL's path.", "/jazz"),
    _r("request.host", "string", "The URL's host name.", "shop.example"),
    _r("request.referrer", "string", "The referring page's URL.", "https://www.google.com/"),
    *(
        _r(f"request.utm.{key}", "string", f"The utm_{key} parameter of the URL.", example)
        for key, example in zip(
            UTM_KEYS, ("newsletter", "email", "spring-sale", "vinyl", "hero-link"), strict=True
        )
    ),
    _r(
        "request.locale",
        "string",
        "The page's locale (or the browser's first Accept-Language).",
        "fr-FR",
    ),
    _r("request.language", "string", "The locale's language, lower case.", "fr"),
    _r("request.device", "string", "mobile, tablet or desktop (from the user agent).", "mobile"),
    _r("request.time", "date", "The moment of the decision (UTC, ISO 8601).", "2026-12-06T20:00Z"),
    _r("request.hour", "number", "The hour of the decision (0-23, UTC).", 20),
    _r("request.weekday", "number", "The day of the decision (1 Monday - 7 Sunday).", 7),
    _r("request.attributes.*", "object", "Custom values the page sends in context.attributes.", 1),
)

EVENT_TYPES = (
    "page_view",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "search",
    "custom",
)

# The rolling windows of segments/windows.py (1d hour-precise; 7d and 30d day-precise) and the
# event types whose categories they keep.
WINDOWS = ("1d", "7d", "30d")
CATEGORY_EVENT_TYPES = ("product_view", "add_to_cart", "purchase")

PROFILE_ATTRIBUTES: tuple[Attribute, ...] = (
    _p(
        "profile.aggregates.event_count",
        "number",
        "Events stored for the visitor (all types).",
        42,
    ),
    *(
        _p(
            f"profile.aggregates.{kind}_count",
            "number",
            f"Number of {kind.replace('_', ' ')} events.",
            3,
        )
        for kind in EVENT_TYPES
    ),
    _p("profile.aggregates.sessions", "number", "Visits (30 minutes apart or more).", 5),
    _p("profile.aggregates.first_seen", "date", "First event's time.", "2026-01-05T10:00:00Z"),
    _p("profile.aggregates.last_seen", "date", "Latest event's time.", "2026-12-01T18:30:00Z"),
    _p("profile.aggregates.last_event_at", "date", "Latest event's time.", "2026-12-01T18:30:00Z"),
    _p("profile.aggregates.last_purchase_at", "date", "Latest purchase's time.", "2026-11-20"),
    _p("profile.aggregates.frequency", "number", "Purchases (RFM frequency).", 4),
    _p("profile.aggregates.monetary", "number", "Total purchase value (RFM monetary).", 86.5),
    _p("profile.aggregates.average_order_value", "number", "Monetary / frequency.", 21.6),
    _p("profile.aggregates.cart_value", "number", "Value of items added since last purchase.", 25),
    _p(
        "profile.aggregates.last_add_to_cart_at",
        "date",
        "Latest add to cart's time.",
        "2026-12-01T18:20:00Z",
    ),
    _p(
        "profile.aggregates.purchased_since_last_add_to_cart",
        "boolean",
        "Whether a purchase followed the latest add to cart.",
        False,
    ),
    _p(
        "profile.aggregates.category_affinities.*",
        "number",
        "Events per product category (the key is the category).",
        7,
    ),
    *(
        _p(
            f"profile.windows.{window}.{kind}.{measure}",
            "number",
            f"{'Events' if measure == 'count' else 'Sum of the values of the events'} of type "
            f"{kind} in the rolling window {window} (0 when none).",
            2 if measure == "count" else 39.5,
        )
        for window in WINDOWS
        for kind in EVENT_TYPES
        for measure in ("count", "sum")
    ),
    *(
        _p(
            f"profile.windows.{window}.{kind}.category.*",
            "number",
            f"{kind} events of one product category in the window {window} (absent when none).",
            3,
        )
        for window in WINDOWS
        for kind in CATEGORY_EVENT_TYPES
    ),
    _p(
        "profile.segments",
        "list",
        "Keys of the segments the visitor belongs to (use $in / $nin / $all).",
        ["loyal"],
    ),
    _p(
        "profile.consent.*", "boolean", "Consent per purpose (analytics, personalization...).", True
    ),
)

STATIC_ATTRIBUTES = REQUEST_ATTRIBUTES + PROFILE_ATTRIBUTES

# Stored under the profile but not for conditions: what to read instead.
INTERNAL_PATHS = {
    "profile.aggregates.buckets": "the raw counts behind the rolling windows; read "
    "profile.windows.<1d|7d|30d>.<type>.count instead",
}

OPERATORS: tuple[Operator, ...] = (
    Operator(
        "(a value)",
        "any JSON value",
        "equal (deep for lists and objects)",
        {"request.device": "mobile"},
    ),
    Operator("$eq", "any JSON value", "equal", {"request.language": {"$eq": "fr"}}),
    Operator("$ne", "any JSON value", "not equal", {"request.device": {"$ne": "mobile"}}),
    Operator(
        "$gt",
        "number, string or ISO date",
        "greater than",
        {"profile.aggregates.monetary": {"$gt": 100}},
    ),
    Operator(
        "$gte",
        "number, string or ISO date",
        "at least",
        {"profile.aggregates.purchase_count": {"$gte": 1}},
    ),
    Operator("$lt", "number, string or ISO date", "less than", {"request.hour": {"$lt": 12}}),
    Operator(
        "$lte",
        "number, string or ISO date",
        "at most",
        {"profile.aggregates.last_seen": {"$lte": "2026-12-01"}},
    ),
    Operator(
        "$ago",
        'duration ("30m", "12h", "7d", "1h30m"), inside $gt/$gte/$lt/$lte',
        "the instant that long before now",
        {"profile.aggregates.last_purchase_at": {"$lt": {"$ago": "90d"}}},
    ),
    Operator(
        "$ahead",
        "duration, inside $gt/$gte/$lt/$lte",
        "the instant that long after now",
        {"profile.aggregates.last_seen": {"$lte": {"$ahead": "1d"}}},
    ),
    Operator(
        "$in",
        "list",
        "one of (an array attribute: any item is)",
        {"profile.segments": {"$in": ["loyal"]}},
    ),
    Operator("$nin", "list", "none of", {"request.utm.source": {"$nin": ["ads"]}}),
    Operator(
        "$ini",
        "list of strings",
        "one of, ignoring case",
        {"request.utm.campaign": {"$ini": ["Spring"]}},
    ),
    Operator(
        "$nini",
        "list of strings",
        "none of, ignoring case",
        {"request.host": {"$nini": ["TEST.example"]}},
    ),
    Operator(
        "$all",
        "list",
        "an array attribute holding all of",
        {"profile.segments": {"$all": ["loyal", "jazz-fans"]}},
    ),
    Operator(
        "$alli",
        "list of strings",
        "all of, ignoring case",
        {"profile.traits.tags": {"$alli": ["VIP"]}},
    ),
    Operator(
        "$elemMatch",
        "condition",
        "an array item matching",
        {"profile.traits.orders": {"$elemMatch": {"$gt": 10}}},
    ),
    Operator(
        "$size",
        "number or condition",
        "an array of this length",
        {"profile.segments": {"$size": 0}},
    ),
    Operator(
        "$exists",
        "true or false",
        "the attribute is present (or absent)",
        {"request.utm.source": {"$exists": True}},
    ),
    Operator(
        "$type",
        "string, number, boolean, array, object or null",
        "the value's JSON type",
        {"profile.traits.age": {"$type": "number"}},
    ),
    Operator(
        "$regex",
        "RE2 pattern",
        "matches (linear time; no lookarounds)",
        {"request.path": {"$regex": "^/jazz"}},
    ),
    Operator(
        "$regexi",
        "RE2 pattern",
        "matches, ignoring case",
        {"request.referrer": {"$regexi": "google"}},
    ),
    Operator(
        "$veq",
        "version string",
        "version equal (1.2 = 1.2.0)",
        {"request.attributes.app_version": {"$veq": "2.1"}},
    ),
    Operator(
        "$vne",
        "version string",
        "version not equal",
        {"request.attributes.app_version": {"$vne": "2.1"}},
    ),
    Operator(
        "$vgt",
        "version string",
        "version greater",
        {"request.attributes.app_version": {"$vgt": "2.1"}},
    ),
    Operator(
        "$vgte",
        "version string",
        "version at least",
        {"request.attributes.app_version": {"$vgte": "2.1"}},
    ),
    Operator(
        "$vlt",
        "version string",
        "version less",
        {"request.attributes.app_version": {"$vlt": "3.0.0"}},
    ),
    Operator(
        "$vlte",
        "version string",
        "version at most",
        {"request.attributes.app_version": {"$vlte": "3"}},
    ),
    Operator(
        "$inGroup",
        "saved group id",
        "member of a saved group",
        {"profile.traits.customer_id": {"$inGroup": "beta"}},
    ),
    Operator(
        "$notInGroup",
        "saved group id",
        "not a member of a saved group",
        {"profile.traits.customer_id": {"$notInGroup": "beta"}},
    ),
    Operator(
        "$not",
        "operators",
        "the operators inside do not hold",
        {"request.device": {"$not": {"$eq": "mobile"}}},
    ),
    Operator(
        "$and",
        "list of conditions",
        "all hold",
        {"$and": [{"request.device": "mobile"}, {"request.language": "fr"}]},
    ),
    Operator(
        "$or",
        "list of conditions",
        "at least one holds",
        {"$or": [{"request.device": "mobile"}, {"request.device": "tablet"}]},
    ),
    Operator("$nor", "list of conditions", "none holds", {"$nor": [{"request.device": "mobile"}]}),
    Operator(
        "$not (condition)",
        "condition",
        "the condition does not hold",
        {"$not": {"request.device": "mobile"}},
    ),
)


def attribute_for(path: str, attributes: Iterable[Attribute]) -> Attribute | None:
    for attribute in attributes:
        if attribute.matches(path):
            return attribute
    return None


def _fits(type_: str, value: Any) -> bool:
    if type_ == "number":
        return is_number(value)
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "date":
        if isinstance(value, Mapping):  # {"$ago": "30m"} / {"$ahead": "3d"}: now -/+ a duration
            return set(value) <= {"$ago", "$ahead"} and len(value) == 1
        # An ISO 8601 instant, or epoch seconds (milliseconds above 10^11), as the evaluator reads.
        return (isinstance(value, str) and parse_instant(value) is not None) or is_number(value)
    return True


def _operands(value: Any) -> Iterable[tuple[str, Any]]:
    """(operator, operand) pairs whose operand is a value of the attribute's own type."""
    if not is_operator_object(value):
        yield "(a value)", value
        return
    for op, operand in value.items():
        if op in ORDERING or op in ("$eq", "$ne"):
            yield op, operand
        elif op in MEMBERSHIP and isinstance(operand, list):
            for item in operand:
                yield op, item
        elif op == "$not":
            yield from _operands(operand)


def _attribute_values(condition: Any) -> Iterable[tuple[str, Any]]:
    if not isinstance(condition, Mapping):
        return
    for key, value in condition.items():
        if key in LOGICAL_LISTS and isinstance(value, list):
            for sub in value:
                yield from _attribute_values(sub)
        elif key == "$not":
            yield from _attribute_values(value)
        elif isinstance(key, str) and not key.startswith("$"):
            yield key, value


def catalogue_findings(
    condition: Any, attributes: Iterable[Attribute], *, profile_only: bool = False
) -> list[Finding]:
    """Each attribute path of `condition` outside the catalogue (a warning; an error when
    `profile_only`, as segment conditions are, where only profile attributes exist), each request
    attribute in a profile-only condition (an error), and each value of the wrong type for its
    attribute (a warning: such a comparison never matches)."""
    attributes = tuple(attributes)
    known = [a.path for a in attributes if not a.path.endswith(".*")]
    findings: list[Finding] = []
    seen: set[str] = set()
    for path, value in _attribute_values(condition):
        attribute = attribute_for(path, attributes)
        if path not in seen:
            seen.add(path)
            if profile_only and path.startswith("request."):
                findings.append(
                    Finding(
                        path,
                        "error",
                        "segments are computed from stored profiles, which have no request: "
                        "only profile.* attributes can be used here",
                    )
                )
                continue
            internal = next(
                (why for prefix, why in INTERNAL_PATHS.items() if path.startswith(prefix)), None
            )
            if internal is not None:
                findings.append(Finding(path, "error" if profile_only else "warning", internal))
                continue
            if attribute is None:
                close = difflib.get_close_matches(path, known, n=1, cutoff=0.75)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                findings.append(
                    Finding(
                        path,
                        "error" if profile_only else "warning",
                        f"is not in the attribute catalogue, so it is never set{hint}",
                    )
                )
                continue
        if attribute is None or attribute.type in ("list", "object"):
            continue
        for op, operand in _operands(value):
            if operand is not None and not _fits(attribute.type, operand):
                findings.append(
                    Finding(
                        path,
                        "warning",
                        f"{op} {operand!r} is not a {attribute.type}, the type of this "
                        "attribute: it never matches",
                    )
                )
    return findings


# --- The reference page (docs/conditions-reference.md), generated from the lists above ----


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False).replace("|", "\\|")


def catalogue_markdown() -> str:
    """docs/conditions-reference.md: every operator and every static attribute, from this module
    (a test checks that the committed page is this function's output: `python -m rules.catalogue
    > docs/conditions-reference.md` after changing the lists)."""
    from .describe import describe_condition

    lines = [
        "# Conditions reference: operators and attributes",
        "",
        "<!-- Generated by `python -m rules.catalogue > docs/conditions-reference.md` from "
        "rules/catalogue.py; tests/unit/rules/test_catalogue.py fails when this page and the code "
        "differ. -->",
        "",
        "A condition is a JSON object in the MongoDB style: attribute paths with dots, each",
        "compared with a value (equality) or with operators; several entries must all hold.",
        "`{}` matches everyone (time and windowed behaviour in depth:",
        "[conditions.md](conditions.md)). Variants' conditions read `request.*` (always) and",
        "`profile.*`",
        "(only with the visitor's personalization consent); segments' conditions are computed",
        "from stored profiles and read `profile.*` only.",
        "",
        "When a condition is saved, a path outside this catalogue or a value of the wrong type",
        "for its attribute is reported: a warning on a variant (it is saved, and probably never",
        "matches), a refusal on a segment.",
        "",
        "## Operators",
        "",
        "| operator | operand | meaning | example | in words |",
        "| --- | --- | --- | --- | --- |",
    ]
    for op in OPERATORS:
        lines.append(
            f"| `{op.name}` | {op.operand} | {op.meaning} | `{_json(op.example)}` | "
            f"{describe_condition(op.example).replace('|', '/')} |"
        )
    for title, scope in (("Request attributes", "request"), ("Profile attributes", "profile")):
        lines += [
            "",
            f"## {title}",
            "",
            "| path | type | description | example |",
            "| --- | --- | --- | --- |",
        ]
        for attribute in STATIC_ATTRIBUTES:
            if attribute.scope == scope:
                lines.append(
                    f"| `{attribute.path}` | {attribute.type} | {attribute.description} | "
                    f"`{_json(attribute.example)}` |"
                )
    lines += [
        "",
        "A path ending in `.*` stands for any key under it.",
        "",
        "## Traits and segments",
        "",
        "`profile.traits.<name>` exists for each trait declared in the trait schema (admin: Trait",
        "definitions), with its declared type; `profile.segments` lists the keys of the visitor's",
        "segments. Both live in the database, where the checks at save (the admin's messages, the",
        "variant API's `warnings`, the segment form's refusals) read them (segments/catalogue.py).",
        "",
        "## Conditions that can never match",
        "",
        "| condition | why |",
        "| --- | --- |",
        '| `{"request.utm_campaign": "spring"}` | the path is `request.utm.campaign` |',
        '| `{"profile.aggregates.last_seen": {"$gt": "now-30m"}}` | `now-30m` is not a date '
        '(`{"$gt": {"$ago": "30m"}}` is) |',
        '| a segment on `{"request.device": "mobile"}` | segments see no request |',
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    sys.stdout.write(catalogue_markdown())
