"""The decision: for each requested placement, which variant to serve, rendered, and why.

Order per placement: running experiment (deterministic arm) → first live targeted variant whose
condition matches, by priority → the placement's default. Any failure serves the default with a
`fallback:<why>` reason; nothing here raises for what is not the caller's fault.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from content.rendering import RenderError, RenderOverBudget, template_prepare, template_render
from core import metrics
from experiments.engine import Assignment, ExperimentSpec, assign
from experiments.engine import hash as bucket_hash
from recommendations import serving as recs_serving
from segments.windows import profile_windowed

from .snapshot import CompiledVariant, PlacementPlan, Snapshot

logger = logging.getLogger(__name__)

# A visitor's arm is a pure function of the experiment's spec and the visitor's key, but hashing
# the 64-character key (FNV-1a in Python, over UTF-16 code units, twice) takes several µs per
# experiment per decision: the process remembers the arms of its recent visitors, whose repeat
# page views then reuse them. Bounded and emptied when full, like the exposures this process
# recently logged (experiments.services). An entry holds its spec, so no other spec can take
# that spec's id while the entry lives; a snapshot rebuild brings new specs, and new entries.
ASSIGNMENT_MEMO_SIZE = 10_000
_assignments: dict[tuple[int, str], tuple[ExperimentSpec, Assignment | None]] = {}


def _assign(spec: ExperimentSpec, unit_id: str) -> Assignment | None:
    """assign(spec, unit_id), remembered for this process's recent visitors."""
    memo_key = (id(spec), unit_id)
    entry = _assignments.get(memo_key)
    if entry is not None and entry[0] is spec:
        return entry[1]
    assignment = assign(spec, unit_id)
    if len(_assignments) >= ASSIGNMENT_MEMO_SIZE:
        _assignments.clear()
    _assignments[memo_key] = (spec, assignment)
    return assignment


@dataclass(frozen=True, slots=True)
class Visitor:
    key: str | None  # pseudonymous key; None for an anonymous call
    profile: dict[str, Any] | None  # the cached profile document, if any and usable
    personalization_allowed: bool
    # Experiments count visitors: without analytics consent they see the default experience.
    analytics_allowed: bool = True


HOLDOUT_SEED = "mosaic-global-holdout"
# The arm key under which held-out visitors' exposures are logged (results compare them with
# the experiment's arms pooled: the experiences as a whole against none of them).
HOLDOUT_ARM = "__holdout__"


def in_holdout(snapshot: Snapshot, visitor_key: str) -> bool:
    """Whether the visitor is in the global holdout (never sees any experiment)."""
    holdout = snapshot.holdout
    if holdout <= 0 or not visitor_key:
        return False
    return (bucket_hash(HOLDOUT_SEED, visitor_key, 2) or 0.0) < holdout


@dataclass(slots=True)
class Decision:
    placement: str
    variant: str | None
    html: str
    data: dict[str, Any]
    reason: str
    experiment: dict[str, str] | None = None
    trace: list[dict[str, str]] | None = None
    # Key of the experiment this visitor was held out of (global holdout; logged, not shown).
    holdout: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "variant": self.variant,
            "html": self.html,
            "data": self.data,
            "reason": self.reason,
            "experiment": self.experiment,
        }
        if self.trace is not None:
            out["explain"] = self.trace
        return out


def decide(
    *,
    snapshot: Snapshot,
    placement_keys: list[str],
    visitor: Visitor,
    request_context: dict[str, Any],
    explain: bool = False,
    now: datetime | None = None,
    forced: dict[str, str] | None = None,
    sticky: dict[str, str] | None = None,
) -> dict[str, Decision]:
    """`forced`: experiment key -> arm key to serve (preview by staff or a secret key; never
    logged as an exposure). `sticky`: the visitor's remembered arms of sticky experiments."""
    now = now or datetime.now(UTC)
    holdout = in_holdout(snapshot, visitor.key) if visitor.key else False
    profile = visitor.profile if visitor.personalization_allowed and visitor.profile else {}
    if profile and snapshot.reads_windows:
        # Rolling windows are folded from the document's buckets at this decision's now.
        profile = profile_windowed(profile, now)
    attributes = {"request": request_context, "profile": profile}
    template_context = {"request": request_context, "profile": profile}
    results: dict[str, Decision] = {}
    for placement_key in placement_keys:
        plan = snapshot.placements.get(placement_key)
        if plan is None:
            why = "unknown_placement" if snapshot.available else "snapshot_unavailable"
            results[placement_key] = _fallback(placement_key, None, "", why, None)
            continue
        results[placement_key] = _decide_placement(
            plan,
            visitor,
            attributes,
            template_context,
            now,
            explain,
            forced,
            sticky,
            holdout,
            snapshot.version,
        )
    return results


def _decide_placement(
    plan: PlacementPlan,
    visitor: Visitor,
    attributes: dict[str, Any],
    template_context: dict[str, Any],
    now: datetime,
    explain: bool,
    forced: dict[str, str] | None = None,
    sticky: dict[str, str] | None = None,
    holdout: bool = False,
    version: int = 0,
) -> Decision:
    trace: list[dict[str, str]] | None = [] if explain else None
    consent_skipped = False
    chosen: CompiledVariant | None = None
    reason = "default"
    experiment_info = None
    held_out_of = None

    experiment = plan.experiment
    if experiment is not None and experiment.rollout_variant is not None:
        chosen = plan.by_key[experiment.rollout_variant]
        reason = f"rollout:{experiment.key}"
        _note(trace, f"experiment:{experiment.key}", "stopped, winner rolled out")
    elif experiment is not None and forced and experiment.key in forced:
        arm_key = forced[experiment.key]
        if arm_key in experiment.spec.arm_keys:
            index = experiment.spec.arm_keys.index(arm_key)
            chosen = plan.by_key[experiment.arm_variants[index]]
            reason = f"experiment:{experiment.key}/{arm_key}"
            experiment_info = {"key": experiment.key, "arm": arm_key, "forced": True}
            _note(trace, f"experiment:{experiment.key}", f"forced {arm_key} (not logged)")
        else:
            _note(trace, f"experiment:{experiment.key}", f"forced arm {arm_key!r} unknown")
    elif experiment is not None and visitor.key:
        if not visitor.analytics_allowed:
            _note(trace, f"experiment:{experiment.key}", "skipped: no analytics consent")
        elif holdout:
            held_out_of = experiment.key
            _note(trace, f"experiment:{experiment.key}", "skipped: global holdout")
        elif experiment.reads_profile and not visitor.personalization_allowed:
            consent_skipped = True
            _note(trace, f"experiment:{experiment.key}", "skipped: reads the profile, no consent")
        elif experiment.eligible is None or _safe_match(experiment.eligible, attributes):
            assignment = _assign(experiment.spec, visitor.key)
            remembered = sticky.get(experiment.key) if sticky and experiment.sticky else None
            if remembered is not None and remembered in experiment.spec.arm_keys:
                # Sticky: the arm this visitor was first exposed to, whatever the weights now.
                index = experiment.spec.arm_keys.index(remembered)
                assignment = Assignment(experiment.key, index, remembered, -1.0)
            if assignment is not None:
                chosen = plan.by_key[experiment.arm_variants[assignment.arm_index]]
                reason = f"experiment:{experiment.key}/{assignment.arm_key}"
                experiment_info = {"key": experiment.key, "arm": assignment.arm_key}
                if experiment.sticky:
                    experiment_info["sticky"] = True
                _note(trace, f"experiment:{experiment.key}", f"assigned {assignment.arm_key}")
            else:
                _note(trace, f"experiment:{experiment.key}", "not enrolled (coverage)")
        else:
            _note(trace, f"experiment:{experiment.key}", "not eligible")

    if chosen is None:
        chosen, skipped = _first_targeted(
            plan, visitor.personalization_allowed, attributes, now, trace
        )
        consent_skipped = consent_skipped or skipped
        if chosen is not None:
            reason = f"targeted:{chosen.key}"

    if chosen is None:
        chosen = plan.default
        reason = "default:no_consent" if consent_skipped else "default"
        if chosen is None:
            return _fallback(plan.key, None, "", "no_default", trace)

    context, recs = _block_context(chosen, visitor, template_context, version)
    html, failure = _render(plan.key, chosen, context)
    if failure is None:
        data = dict(chosen.answer_data)
        if recs is not None:
            reason = f"{reason};recommendations:{recs.source}"
            data["recommendations"] = _recs_data(recs)
        return Decision(
            plan.key, chosen.key, html, data, reason, experiment_info, trace, held_out_of
        )
    default = plan.default
    if default is not None and default is not chosen:
        context, _recs = _block_context(default, visitor, template_context, version)
        html, default_failure = _render(plan.key, default, context)
        if default_failure is None:
            return _fallback(plan.key, default, html, failure, trace)
    return _fallback(plan.key, None, "", failure, trace)


def _block_context(
    variant: CompiledVariant,
    visitor: Visitor,
    template_context: dict[str, Any],
    version: int,
) -> tuple[dict[str, Any], recs_serving.BlockItems | None]:
    """The template context, with `items` for a recommendations block (in process: the
    visitor's list came with the profile document, the catalog is held per snapshot version)."""
    if variant.block != recs_serving.BLOCK_KEY:
        return template_context, None
    try:
        recs = recs_serving.block_items(
            version=version,
            profile=visitor.profile,
            personalization_allowed=visitor.personalization_allowed,
            request_context=template_context["request"],
            fields=variant.fields,
        )
    except Exception:  # a catalog that cannot load must not break the page: an empty block
        logger.exception("recommendations: block items unavailable")
        recs = recs_serving.BlockItems([], "unavailable", None)
    return {**template_context, "items": recs.items}, recs


def _recs_data(recs: recs_serving.BlockItems) -> dict[str, Any]:
    return {"source": recs.source, "run": recs.run_id, "items": [i["sku"] for i in recs.items]}


def _render(
    placement_key: str, variant: CompiledVariant, template_context: dict[str, Any]
) -> tuple[str, str | None]:
    """The variant's HTML, or ("", why) when it raised or ran over the render budget.

    The budget is hard: the render itself stops at MOSAIC_RENDER_BUDGET_MS or at its output and
    value-size limits (content.rendering), so no template holds a worker longer than that; the
    time is checked again after the render for what happens between the render's own checks.
    Either way the fallback is served and counted, so editors see it.
    """
    try:
        # Compiling (once per template and process, tens of ms for a large one) is not rendering:
        # outside the budget, or each process's first visitor would get the fallback.
        template_prepare(variant.template)
        budget_ms = settings.MOSAIC_RENDER_BUDGET_MS
        start = time.perf_counter()
        html = template_render(
            variant.template,
            {**template_context, "data": variant.data, "fields": variant.fields},
            budget_ms=budget_ms,
        )
    except RenderOverBudget as exc:
        logger.warning("render of %s/%s stopped: %s", placement_key, variant.key, exc)
        metrics.incr("mosaic_render_over_budget_total", placement=placement_key)
        return "", "render_over_budget"
    except RenderError as exc:
        logger.warning("render failed for %s/%s: %s", placement_key, variant.key, exc)
        metrics.incr("mosaic_render_errors_total", placement=placement_key)
        return "", "render_error"
    elapsed = time.perf_counter() - start
    metrics.RENDER_SECONDS.observe(elapsed)
    elapsed_ms = elapsed * 1000
    if elapsed_ms > budget_ms:
        logger.warning(
            "render of %s/%s took %.1f ms (budget %s ms)",
            placement_key,
            variant.key,
            elapsed_ms,
            settings.MOSAIC_RENDER_BUDGET_MS,
        )
        metrics.incr("mosaic_render_over_budget_total", placement=placement_key)
        return "", "render_over_budget"
    return html, None


def _fallback(
    placement_key: str,
    variant: CompiledVariant | None,
    html: str,
    why: str,
    trace: list[dict[str, str]] | None,
) -> Decision:
    metrics.incr("mosaic_decide_fallbacks_total", reason=why)
    return Decision(
        placement_key,
        variant.key if variant else None,
        html,
        dict(variant.answer_data) if variant else {},
        f"fallback:{why}",
        trace=trace,
    )


def _first_targeted(
    plan: PlacementPlan,
    personalization_allowed: bool,
    attributes: dict[str, Any],
    now: datetime,
    trace: list[dict[str, str]] | None,
) -> tuple[CompiledVariant | None, bool]:
    """(first live targeted variant that applies, whether consent skipped one on the way).

    The same loop explains (each step is appended to `trace` when it is a list), so an
    explanation can never disagree with the decision it explains.
    """
    consent_skipped = False
    locale = attributes["request"].get("locale", "")
    for variant in plan.targeted:
        if variant.scheduled and not variant.is_scheduled(now):
            outcome = "outside its schedule"
        elif variant.locale and not _locale_matches(variant.locale, locale):
            outcome = f"locale {variant.locale} ≠ {locale or 'none'}"
        elif variant.reads_profile and not personalization_allowed:
            consent_skipped = True
            outcome = "skipped: reads the profile, no personalization consent"
        else:
            matches = variant.matches
            try:
                matched = matches is None or matches(attributes)
            except Exception:  # a compiled condition must never break a page
                logger.exception("condition evaluation failed")
                matched = False
            if matched:
                _note(trace, variant.key, "matched")
                return variant, consent_skipped
            outcome = "condition false"
        if trace is not None:
            trace.append({"rule": variant.key, "outcome": outcome})
    return None, consent_skipped


def _safe_match(matcher, attributes: dict[str, Any]) -> bool:
    try:
        return bool(matcher(attributes))
    except Exception:  # a compiled condition must never break a page
        logger.exception("condition evaluation failed")
        return False


def _locale_matches(wanted: str, actual: str) -> bool:
    wanted, actual = wanted.lower(), actual.lower()
    return actual == wanted or actual.startswith(wanted + "-")


def _note(trace: list[dict[str, str]] | None, rule: str, outcome: str) -> None:
    if trace is not None:
        trace.append({"rule": rule, "outcome": outcome})
