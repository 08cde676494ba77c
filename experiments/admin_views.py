"""The admin results page of an experiment: reads the latest stored computation (never computes
results on page load), plus the planning calculator (power / minimum detectable effect)."""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.contrib import admin
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from . import stats
from .models import Experiment, StatsEngine
from .selectors import results_history, results_latest

PEEK_ENGINES = (StatsEngine.FREQUENTIST,)


class PlanForm(forms.Form):
    """Planning: MDE for a sample size, or sample size for an effect."""

    baseline = forms.FloatField(
        min_value=1e-9, max_value=1e9, initial=0.05, help_text="Control rate (or mean)."
    )
    std = forms.FloatField(
        required=False,
        min_value=1e-9,
        max_value=1e9,
        help_text="Per-visitor standard deviation (means only; empty for a conversion rate).",
    )
    users_per_arm = forms.IntegerField(min_value=2, max_value=10**10, required=False)
    effect = forms.FloatField(
        required=False, min_value=1e-6, max_value=100, help_text="Relative lift, 0.1 = +10 %."
    )
    power = forms.FloatField(min_value=0.5, max_value=0.99, initial=0.8)

    def clean(self):
        data = super().clean()
        binary = data.get("std") in (None, "")
        if binary and data.get("baseline") is not None and not 0 < data["baseline"] < 1:
            self.add_error("baseline", "A conversion rate must be between 0 and 1.")
        if not data.get("users_per_arm") and not data.get("effect"):
            self.add_error("users_per_arm", "Give users per arm (for the MDE) or an effect.")
        return data

    def answer(self) -> dict[str, Any]:
        data = self.cleaned_data
        binary = data.get("std") in (None, "")
        mean = data["baseline"]
        variance = mean * (1 - mean) if binary else data["std"] ** 2
        out: dict[str, Any] = {}
        if data.get("users_per_arm"):
            out["mde"] = stats.minimum_detectable_effect(
                mean=mean,
                variance=variance,
                n_per_arm=data["users_per_arm"],
                power=data["power"],
                binary=binary,
            )
        if data.get("effect"):
            try:
                out["sample_size"] = stats.sample_size(
                    mean=mean,
                    variance=variance,
                    effect=data["effect"],
                    power=data["power"],
                    binary=binary,
                )
            except ValueError as exc:
                out["sample_size_error"] = str(exc)
        return out


def _bar(est: dict | None, scale: float, higher_is_better: bool) -> dict | None:
    """Geometry of an interval bar on [-scale, scale] in percent of the cell width."""
    if not est or est.get("error") or est.get("ci_low") is None or est.get("ci_high") is None:
        return None

    def pos(x: float) -> float:
        return max(0.0, min(100.0, 50 + 50 * x / scale))

    low, high, mid = est["ci_low"], est["ci_high"], est["expected"]
    good = low > 0 if higher_is_better else high < 0
    bad = high < 0 if higher_is_better else low > 0
    return {
        "left": pos(low),
        "width": max(pos(high) - pos(low), 0.5),
        "dot": pos(mid),
        "tone": "good" if good else "bad" if bad else "flat",
    }


def _scale(values: list[float]) -> float:
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    return max(finite, default=0.1) * 1.1 or 0.1


def results_context(experiment: Experiment, *, cuped: bool) -> dict[str, Any]:
    snapshot = results_latest(experiment=experiment)
    ctx: dict[str, Any] = {"snapshot": snapshot, "cuped": cuped, "metrics": []}
    if snapshot is None:
        return ctx
    data = snapshot.data
    engine = data.get("engine")
    ctx["bayesian"] = engine == StatsEngine.BAYESIAN
    ctx["srm_warning"] = bool(data.get("srm_warning"))
    planned = experiment.planned_sample_size
    ctx["peeking"] = bool(planned and engine in PEEK_ENGINES and snapshot.users < planned)
    ctx["planned"] = planned
    users = {a["key"]: a["users"] for a in data["arms"]}
    for metric in data["metrics"]:
        label = "cuped" if cuped else "plain"
        rels, abss = [], []
        for entry in metric["estimates"].values():
            est = entry.get(label) or entry.get("plain") or {}
            rels += [est.get("relative", {}).get("ci_low"), est.get("relative", {}).get("ci_high")]
            abss += [est.get("absolute", {}).get("ci_low"), est.get("absolute", {}).get("ci_high")]
        rel_scale, abs_scale = _scale(rels), _scale(abss)
        rows = []
        for arm in metric["arms"]:
            entry = metric["estimates"].get(arm["arm"])
            est = None
            cuped_used = False
            if entry is not None:
                est = entry.get(label)
                cuped_used = est is not None and label == "cuped"
                est = est or entry.get("plain")
            rel = (est or {}).get("relative")
            ab = (est or {}).get("absolute")
            rows.append(
                {
                    "arm": arm["arm"],
                    "control": entry is None,
                    "users": users.get(arm["arm"], arm["n"]),
                    "sum": arm["sum"],
                    "mean": arm["mean"],
                    "display": (
                        f"{arm['mean'] * 100:.2f} %"
                        if metric["kind"] == "conversion"
                        else f"{arm['mean']:.3f}"
                    ),
                    "rel": rel,
                    "abs": ab,
                    "rel_bar": _bar(rel, rel_scale, metric["higher_is_better"]),
                    "abs_bar": _bar(ab, abs_scale, metric["higher_is_better"]),
                    "flagged": arm["arm"] in metric.get("guardrail_flagged", []),
                    "cuped_used": cuped_used,
                }
            )
        ctx["metrics"].append({**metric, "rows": rows, "rel_scale": rel_scale})
    factorial = data.get("factorial")
    if factorial:
        names = {m["key"]: m["name"] for m in data["metrics"]}
        ctx["factorial"] = [
            {"metric": names.get(key, key), **effects}
            for key, effects in factorial["metrics"].items()
            if effects
        ]
        ctx["factors"] = factorial["factors"]
    ctx["guardrails_flagged"] = [
        (m["name"], arm) for m in data["metrics"] for arm in m.get("guardrail_flagged", [])
    ]
    return ctx


def experiment_results_view(request, object_id: int):
    experiment = get_object_or_404(Experiment, pk=object_id)
    cuped = request.GET.get("cuped", "1" if experiment.cuped else "0") == "1"
    plan_form = PlanForm(request.GET if "baseline" in request.GET else None)
    plan = plan_form.answer() if plan_form.is_bound and plan_form.is_valid() else None
    history = results_history(experiment=experiment)
    context = {
        **admin.site.each_context(request),
        "title": f"Results: {experiment.name}",
        "experiment": experiment,
        "opts": Experiment._meta,
        "history": history,
        "plan_form": plan_form,
        "plan": plan,
        **results_context(experiment, cuped=cuped),
    }
    return TemplateResponse(request, "admin/experiments/results.html", context)
