"""Mosaic's metrics (prometheus-client), summed over every process at `/metrics`.

Multiprocess mode: each process writes its values to memory-mapped files in its group's directory
(core/metrics_dir.py); `render_text()` merges the files of every group under the root, so one
scrape sees both web (granian) workers and the Celery worker's processes summed. Without a directory
(a script that never loaded the settings) the metrics are this process's only.

Every fallback is counted here as well as logged, so an operator sees a rising failure rate
without reading logs. Names are stable: dashboards read them.
"""

from __future__ import annotations

import atexit
import bisect
import glob
import os
import threading
import time
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

FLUSH_SECONDS = 1.0


class BufferedHistogram:
    """A Histogram observed on decide's path: each observation is counted in this process and
    added to the histogram's values (multiprocess files) within FLUSH_SECONDS, by a background
    thread, at exit, and before a scrape this process serves.

    prometheus-client's multiprocess mode writes every observation to its memory-mapped file
    under a process-wide lock (its sum and its bucket: two writes), and decide observes four
    (its own duration and three renders): a measurable share of a decide call's CPU
    (docs/benchmarks.md, "The decide edge"). Summed here, a flush writes each bucket once.
    A scrape served by another process sees this one's observations up to FLUSH_SECONDS late;
    a process killed outright loses at most that much."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self._bounds = list(histogram._upper_bounds)
        self._lock = threading.Lock()
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._pending = False
        _buffered.append(self)

    def observe(self, amount: float) -> None:
        # The first bucket whose bound is at least `amount`, as Histogram.observe picks it (the
        # last bound is +Inf).
        index = bisect.bisect_left(self._bounds, amount)
        with self._lock:
            self._counts[index] += 1
            self._sum += amount
            if self._pending:
                return
            self._pending = True
        _flusher.wake()

    def flush(self) -> None:
        """Add what was observed since the last flush to the histogram's values."""
        with self._lock:
            if not self._pending:
                return
            counts, total = self._counts, self._sum
            self._counts = [0] * len(self._bounds)
            self._sum = 0.0
            self._pending = False
        for bucket, count in zip(self.histogram._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        self.histogram._sum.inc(total)

    def _forked(self) -> None:
        # A forked child starts empty: what the parent observed is the parent's to write.
        self._lock = threading.Lock()
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._pending = False


_buffered: list[BufferedHistogram] = []


def flush_buffered() -> None:
    """Write every buffered observation of this process now (a scrape, an exit, a test)."""
    for histogram in _buffered:
        histogram.flush()


class _Flusher:
    """This process's one background thread writing buffered observations every FLUSH_SECONDS
    while there are some (started at the first, again in a forked child; asleep when idle)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._pid: int | None = None

    def wake(self) -> None:
        if self._pid != os.getpid():
            self._start()
        self._event.set()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            thread = threading.Thread(target=self._run, name="mosaic-metrics-flush", daemon=True)
            thread.start()
            self._pid = os.getpid()

    def forked(self) -> None:
        # The thread did not survive the fork; the child starts its own at its first observation.
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._pid = None

    def _run(self) -> None:
        while True:
            self._event.wait()
            time.sleep(FLUSH_SECONDS)
            self._event.clear()
            flush_buffered()


_flusher = _Flusher()


def _after_fork_in_child() -> None:
    _flusher.forked()
    for histogram in _buffered:
        histogram._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(flush_buffered)

# Decide answers take a fraction of a millisecond to tens of ms; renders less.
DECIDE_SECONDS = BufferedHistogram(
    Histogram(
        "mosaic_decide_duration_seconds",
        "Time to answer /api/v1/decide (in the view, all placements).",
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    )
)
RENDER_SECONDS = BufferedHistogram(
    Histogram(
        "mosaic_render_duration_seconds",
        "Time to render one variant's template (compiled).",
        buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25),
    )
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
    flush_buffered()  # this process's own observations, exact
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
