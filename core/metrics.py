"""Mosaic's metrics (prometheus-client), summed over every process at `/metrics`.

Multiprocess mode: each process writes its values to memory-mapped files in its group's directory
(core/metrics_dir.py); `render_text()` merges the files of every group under the root, so one
scrape sees both web (granian) workers and the Celery worker's processes summed. Without a directory
(a script that never loaded the settings) the metrics are this process's only.

Every fallback is counted here as well as logged, so an operator sees a rising failure rate
without reading logs. Names are stable: dashboards read them.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .metrics_dir import ENV_NAME, root_of

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

if os.environ.get(ENV_NAME) and not getattr(values.ValueClass, "_multiprocess", False):
    # prometheus_client chose its value class when first imported; the directory was claimed
    # later (a test runner imported the library first): switch before any metric exists.
    values.ValueClass = values.MultiProcessValue()

# --- counters (names kept from the process-local counters they replace) -------------------------

DECIDE_FALLBACKS = Counter(
    "mosaic_decide_fallbacks",
    "Placements answered with a fallback:<why> reason.",
    ["reason"],
)
RENDER_ERRORS = Counter(
    "mosaic_render_errors",
    "Variant renders that raised (served the default instead).",
    ["placement"],
)
RENDER_OVER_BUDGET = Counter(
    "mosaic_render_over_budget",
    "Variant renders slower than MOSAIC_RENDER_BUDGET_MS.",
    ["placement"],
)
EXPOSURES_LOST = Counter(
    "mosaic_exposures_lost", "Exposures that could not be buffered (Redis unavailable)."
)
API_ERRORS = Counter(
    "mosaic_api_errors",
    "API answers of 4xx/5xx by status and reason (the error type).",
    ["status", "reason"],
)
TASKS = Counter(
    "mosaic_celery_tasks",
    "Celery task runs by task and outcome (SUCCESS, FAILURE, RETRY, ...).",
    ["task", "outcome"],
)
TRAITS_REFUSED = Counter(
    "mosaic_traits_refused",
    "Trait values refused by their definition's validation rules.",
    ["trait", "rule"],
)
PROFILE_CACHE_HELP = {
    "hits": "Profile reads served from this process's cache.",
    "misses": "Profile reads sent to Redis over the tracked connection.",
    "bypassed": "Profile reads sent to Redis untracked: cache not ready, or its channel lost.",
    "invalidations": "Keys Redis reported changed (read here).",
    "flushes": "Times the whole profile cache was dropped.",
}
PROFILE_CACHE = {
    name: Counter(f"mosaic_profile_cache_{name}", help_text)
    for name, help_text in PROFILE_CACHE_HELP.items()
}

# --- histograms -----------------------------------------------------------------------------------

# Decide answers take a fraction of a millisecond to tens of ms; renders less.
DECIDE_SECONDS = Histogram(
    "mosaic_decide_duration_seconds",
    "Time to answer /api/v1/decide (in the view, all placements).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
RENDER_SECONDS = Histogram(
    "mosaic_render_duration_seconds",
    "Time to render one variant's template (compiled).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25),
)

_BY_NAME: dict[str, Counter] = {
    "mosaic_decide_fallbacks_total": DECIDE_FALLBACKS,
    "mosaic_render_errors_total": RENDER_ERRORS,
    "mosaic_render_over_budget_total": RENDER_OVER_BUDGET,
    "mosaic_exposures_lost_total": EXPOSURES_LOST,
    "mosaic_api_errors_total": API_ERRORS,
    "mosaic_celery_tasks_total": TASKS,
    "mosaic_traits_refused_total": TRAITS_REFUSED,
    **{f"mosaic_profile_cache_{name}_total": c for name, c in PROFILE_CACHE.items()},
}
HELP = {name: counter._documentation for name, counter in _BY_NAME.items()}


def incr(name: str, amount: int = 1, **labels: str) -> None:
    """Add to a counter by its exposed name (`mosaic_..._total`)."""
    counter = _BY_NAME[name]
    (counter.labels(**labels) if labels else counter).inc(amount)


def value(name: str, **labels: str) -> float:
    """This process's value of a counter (tests; the scrape sums every process)."""
    counter = _BY_NAME[name]
    return (counter.labels(**labels) if labels else counter)._value.get()


# --- gauges read at scrape time -------------------------------------------------------------------


class _ScrapeGauges:
    """Gauges measured when scraped (one Redis round trip, one COUNT): registered by the app that
    owns the numbers (`register_gauges`), so core imports no app."""

    def __init__(self) -> None:
        self.readers: list = []

    def collect(self):
        for reader in self.readers:
            yield from reader()


_scrape_gauges = _ScrapeGauges()


def register_gauges(reader) -> None:
    """`reader()` yields (name, help, value) tuples, each exposed as a gauge at every scrape."""

    def families():
        for name, help_text, number in reader():
            yield GaugeMetricFamily(name, help_text, value=number)

    _scrape_gauges.readers.append(families)


def _group_files(root: Path) -> Iterable[str]:
    return glob.glob(str(root / "*" / "*.db"))


class _AllGroupsCollector:
    """Merges the files of every process group under the root (web workers and Celery)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self):
        return MultiProcessCollector.merge(list(_group_files(self.root)), accumulate=True)


def render_text() -> bytes:
    """The exposition of every process's metrics (Prometheus text format)."""
    group_dir = os.environ.get(ENV_NAME)
    registry = CollectorRegistry()
    # This process's own metrics only, when no directory was claimed (a script without settings).
    registry.register(_AllGroupsCollector(root_of(group_dir)) if group_dir else _Local())
    registry.register(_scrape_gauges)
    return generate_latest(registry)


class _Local:
    def collect(self):
        return REGISTRY.collect()


def process_exited(pid: int) -> None:
    """A worker process ended (Celery pool shutdown): drop its live gauges."""
    if os.environ.get(ENV_NAME):
        mark_process_dead(pid)
