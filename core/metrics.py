"""Process-local counters of what went wrong, served at /metrics (Prometheus text format).

Every fallback is counted here as well as logged, so an operator sees a rising failure rate
without reading logs. Counters are per process (the `pid` label tells them apart); a scraper
sums them.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

_lock = threading.Lock()
_counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()

HELP = {
    "mosaic_decide_fallbacks_total": "Placements answered with a fallback:<why> reason.",
    "mosaic_render_errors_total": "Variant renders that raised (served the default instead).",
    "mosaic_render_over_budget_total": "Variant renders slower than MOSAIC_RENDER_BUDGET_MS.",
    "mosaic_exposures_lost_total": "Exposures that could not be buffered (Redis unavailable).",
    "mosaic_profile_cache_hits_total": "Profile reads served from this process's cache.",
    "mosaic_profile_cache_misses_total": "Profile reads sent to Redis over the tracked connection.",
    "mosaic_profile_cache_bypassed_total": (
        "Profile reads sent to Redis untracked: cache not ready, or its channel lost."
    ),
    "mosaic_profile_cache_invalidations_total": "Keys Redis reported changed (read here).",
    "mosaic_profile_cache_flushes_total": "Times the whole profile cache was dropped.",
    "mosaic_traits_refused_total": "Trait values refused by their definition's validation rules.",
}


def incr(name: str, amount: int = 1, **labels: str) -> None:
    key = (name, tuple(sorted(labels.items())))
    with _lock:
        _counters[key] += amount


def value(name: str, **labels: str) -> int:
    return _counters[(name, tuple(sorted(labels.items())))]


def render_text(extra: dict[str, int] | None = None) -> str:
    pid = str(os.getpid())
    with _lock:
        items = sorted(_counters.items())
    lines: list[str] = []
    names = sorted({name for (name, _), _ in items} | set(extra or {}) | set(HELP))
    for name in names:
        lines.append(f"# HELP {name} {HELP.get(name, name)}")
        lines.append(f"# TYPE {name} counter")
        rows = [(labels, count) for (n, labels), count in items if n == name]
        if name in (extra or {}):
            rows.append(((), extra[name]))
        if not rows:
            rows = [((), 0)]
        for labels, count in rows:
            label_text = ",".join(f'{k}="{v}"' for k, v in (*labels, ("pid", pid)))
            lines.append(f"{name}{{{label_text}}} {count}")
    return "\n".join(lines) + "\n"
