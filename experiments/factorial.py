"""Multivariate (full-factorial) analysis: each factor's main effect and two-factor interactions,
from the per-arm sufficient statistics of a results computation.

A factor is a placement; its levels are the variants arms serve there. A main effect compares
all arms at a level with all arms at the control's level (pooled over the other factors, which
a full factorial balances). An interaction is the difference in differences of the cell means
of two factors (pooled over the others): (m[a,b] - m[a,0]) - (m[0,b] - m[0,0]), with the
variance the sum of the four cells' variances of the mean, and a normal two-sided p-value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import combinations
from typing import Any

from scipy.stats import norm

from . import stats


def _pool(rows: list[dict], kind: str):
    n = sum(r["n"] for r in rows)
    total = sum(r["sum"] for r in rows)
    if kind == "conversion":
        return stats.Proportion(n=n, conversions=min(total, n))
    return stats.Mean(n=n, sum=total, sum_squares=sum(r["sum_squares"] for r in rows))


def factorial_effects(
    *,
    arm_levels: dict[str, dict[str, str]],
    control_arm: str,
    metric: dict[str, Any],
    compare: Callable,
) -> dict[str, Any] | None:
    """Main effects and interactions for one metric's per-arm rows; None for ratio metrics."""
    if metric["kind"] == "ratio":
        return None
    rows = {r["arm"]: r for r in metric["arms"]}
    factors = list(next(iter(arm_levels.values())).keys())
    control_levels = arm_levels[control_arm]
    main = []
    for factor in factors:
        levels = sorted({lv[factor] for lv in arm_levels.values()})
        base_rows = [
            rows[a] for a, lv in arm_levels.items() if lv[factor] == control_levels[factor]
        ]
        base = _pool(base_rows, metric["kind"])
        for level in levels:
            if level == control_levels[factor]:
                continue
            level_rows = [rows[a] for a, lv in arm_levels.items() if lv[factor] == level]
            treated = _pool(level_rows, metric["kind"])
            main.append(
                {
                    "factor": factor,
                    "level": level,
                    "baseline_level": control_levels[factor],
                    "n": treated.n,
                    "baseline_n": base.n,
                    "relative": compare(base, treated, relative=True).as_dict(),
                    "absolute": compare(base, treated, relative=False).as_dict(),
                }
            )
    interactions = []
    for f1, f2 in combinations(factors, 2):
        c1, c2 = control_levels[f1], control_levels[f2]
        levels1 = sorted({lv[f1] for lv in arm_levels.values()} - {c1})
        levels2 = sorted({lv[f2] for lv in arm_levels.values()} - {c2})
        for a in levels1:
            for b in levels2:
                cells = {}
                for x, y in ((c1, c2), (a, c2), (c1, b), (a, b)):
                    cells[(x, y)] = _pool(
                        [
                            rows[arm]
                            for arm, lv in arm_levels.items()
                            if lv[f1] == x and lv[f2] == y
                        ],
                        metric["kind"],
                    )
                if any(c.n < 2 for c in cells.values()):
                    continue
                did = (cells[(a, b)].mean - cells[(a, c2)].mean) - (
                    cells[(c1, b)].mean - cells[(c1, c2)].mean
                )
                se = math.sqrt(sum(c.variance / c.n for c in cells.values()))
                p = float(2 * norm.sf(abs(did) / se)) if se > 0 else 1.0
                z = float(norm.ppf(0.975))
                interactions.append(
                    {
                        "factors": [f1, f2],
                        "levels": [a, b],
                        "expected": did,
                        "ci_low": did - z * se,
                        "ci_high": did + z * se,
                        "p_value": p,
                    }
                )
    return {"main_effects": main, "interactions": interactions}
