"""/metrics in multiprocess mode: every process's counters summed in one scrape."""

import os
import re
import time
import uuid

import pytest

from core import metrics
from tests.conftest import wait_for
from tests.factories import event


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in an exposition (0 when absent)."""
    label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    series = f"{name}{{{label_text}}}" if labels else name
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _counted_404(path) -> float:
    """What one process's metrics file holds for the API's 404 counter."""
    from prometheus_client.multiprocess import MultiProcessCollector

    for family in MultiProcessCollector.merge([str(path)]):
        for sample in family.samples:
            if sample.name == "mosaic_api_errors_total" and sample.labels.get("status") == "404":
                return sample.value
    return 0.0


def _in_child(function) -> int:
    """Run `function` in a forked process (as a web worker is); returns its exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            function()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.django_db
def test_metrics__two_processes__one_scrape_sums_both(client):
    # Given a series no other test touches
    reason = f"test-{uuid.uuid4().hex[:8]}"
    # When two worker processes count on it, 3 and 4 times, and exit
    assert _in_child(lambda: metrics.incr("mosaic_decide_fallbacks_total", 3, reason=reason)) == 0
    assert _in_child(lambda: metrics.incr("mosaic_decide_fallbacks_total", 4, reason=reason)) == 0
    # Then a scrape served by a third process (which counted nothing) sees the sum
    assert metrics.value("mosaic_decide_fallbacks_total", reason=reason) == 0
    text = client.get("/metrics").content.decode()
    assert _sample(text, "mosaic_decide_fallbacks_total", reason=reason) == 7


@pytest.mark.django_db
def test_metrics__decide__latency_and_render_histograms(client):
    # Given a placement with a default variant
    from tests.factories import make_placement

    make_placement("hero")
    before = client.get("/metrics").content.decode()
    # When a decision is made
    assert client.get("/api/v1/decide", {"placements": "hero", "visitor": "v1"}).status_code == 200
    # Then the decide latency and render time histograms counted it
    after = client.get("/metrics").content.decode()
    for name in ("mosaic_decide_duration_seconds_count", "mosaic_render_duration_seconds_count"):
        assert _sample(after, name) == _sample(before, name) + 1


@pytest.mark.django_db
def test_metrics__ingestion__queue_and_pending_gauges(client):
    # Given two queued events
    body = {"events": [event("v"), event("w")]}
    with pytest.MonkeyPatch.context() as patch:
        from ingestion import views

        patch.setattr(views, "_trigger_ingestion", lambda: None)  # leave them queued
        assert (
            client.post("/api/v1/events", body, content_type="application/json").status_code == 202
        )
    # When /metrics is scraped
    text = client.get("/metrics").content.decode()
    # Then the queue depth and the pending-aggregate gauge are there
    assert _sample(text, "mosaic_event_queue_depth") == 2
    assert _sample(text, "mosaic_pending_aggregates") == 0


def test_metrics__api_error__counted_with_reason(client):
    # When a client calls an endpoint with a malformed body
    before = metrics.value("mosaic_api_errors_total", status="400", reason="ParseError")
    client.post("/api/v1/consent", b"{not json", content_type="application/json")
    # Then the error is counted with its status and reason
    assert metrics.value("mosaic_api_errors_total", status="400", reason="ParseError") == before + 1


@pytest.mark.worker
def test_metrics__celery_task__outcome_counted_in_the_web_scrape(client, celery_worker):
    # Given the real worker process (its own process group shares the metrics root)
    from experiments.tasks import exposures_flush

    before = _sample(
        client.get("/metrics").content.decode(),
        "mosaic_celery_tasks_total",
        outcome="SUCCESS",
        task="experiments.tasks.exposures_flush",
    )
    # When it runs a task
    exposures_flush.delay()

    # Then this process's scrape sees the worker's count
    def counted() -> float:
        text = client.get("/metrics").content.decode()
        return _sample(
            text,
            "mosaic_celery_tasks_total",
            outcome="SUCCESS",
            task="experiments.tasks.exposures_flush",
        )

    wait_for(lambda: counted() == before + 1, timeout=30, message="task outcome not scraped")


@pytest.mark.slow
def test_metrics__granian_two_workers__scrape_sums_both(redis_url, tmp_path):
    # Given the web process as the Procfile starts it (config/web.py: granian, two worker
    # processes; it claims the metrics directory before granian starts them), on a free port and
    # a private var dir
    import concurrent.futures
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from tests.conftest import ROOT, _free_port

    port = _free_port()
    env = {
        **os.environ,
        "MOSAIC_VAR_DIR": str(tmp_path),
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MOSAIC_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "WEB_ACCESS_LOG": "false",
        # One request at a time per worker: while one serves, the other accepts the next.
        "WEB_BACKPRESSURE": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    process = subprocess.Popen(
        [sys.executable, "-m", "config.web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    try:
        wait_for(lambda: get("/healthz")[0] in (200, 503), timeout=30, interval=0.2)
        group = next((tmp_path / "prometheus").iterdir())

        def per_worker() -> list[float]:
            return [_counted_404(path) for path in group.glob("counter_*.db")]

        # When requests to an unknown API path are answered, 8 at once, in rounds of 40 until
        # both workers have served some: /healthz answers once one worker is up, and the other
        # may still be importing Django on a loaded machine (the first round can all go to one)
        sent = 0
        deadline = time.monotonic() + 120
        while len([count for count in per_worker() if count > 0]) < 2:
            assert time.monotonic() < deadline, per_worker()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda _: get("/api/v1/nope")[0], range(40)))
            assert statuses == [404] * 40
            sent += 40
        # Then both workers counted in their own files, and one scrape (one worker) sees the sum
        assert sum(per_worker()) == sent
        text = get("/metrics")[1]
        assert _sample(text, "mosaic_api_errors_total", reason="http_404", status="404") == sent
    finally:
        process.terminate()
        process.wait(timeout=15)


# --- histograms buffered in the process (core.metrics.BufferedHistogram) -------------------------


def _histogram_pair(buckets=(0.001, 0.01, 0.1)):
    """A histogram observed directly and one observed through a BufferedHistogram (unique names,
    outside the default registry)."""
    from prometheus_client import Histogram

    name = f"mosaic_test_{uuid.uuid4().hex[:8]}"
    direct = Histogram(f"{name}_direct", "test", buckets=buckets, registry=None)
    buffered = metrics.BufferedHistogram(
        Histogram(f"{name}_buffered", "test", buckets=buckets, registry=None)
    )
    return direct, buffered


def _values(histogram) -> tuple[list[float], float]:
    return [b.get() for b in histogram._buckets], histogram._sum.get()


def test_buffered_histogram__flushed__the_values_of_direct_observations():
    # Given the same observations, bounds included, below the first and past the last
    direct, buffered = _histogram_pair()
    amounts = [0.0, 0.0005, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.2, 7.0, 0.001]
    # When one histogram observes them directly and the other through the buffer, then flushed
    for amount in amounts:
        direct.observe(amount)
        buffered.observe(amount)
    before_flush = _values(buffered.histogram)
    buffered.flush()
    # Then nothing was written before the flush, and the same buckets and sum after it
    assert before_flush == ([0.0] * 4, 0.0)
    assert _values(buffered.histogram) == _values(direct)
    # And a second flush with nothing new adds nothing
    buffered.flush()
    assert _values(buffered.histogram) == _values(direct)


def test_buffered_histogram__observing_process__written_by_its_thread_within_flush_seconds():
    # Given a worker process that observes and then serves nothing more (no scrape, no exit)
    _, buffered = _histogram_pair()

    def observe_and_idle():
        for _ in range(5):
            buffered.observe(0.005)
        deadline = time.monotonic() + metrics.FLUSH_SECONDS * 5
        while time.monotonic() < deadline and buffered.histogram._sum.get() == 0:
            time.sleep(0.05)
        # Exit without atexit handlers: only the background thread can have written
        counts, total = _values(buffered.histogram)
        assert counts == [0.0, 5.0, 0.0, 0.0]
        assert total == pytest.approx(0.025)

    # When it runs in its own process
    # Then its background thread wrote the observations to the shared values
    assert _in_child(observe_and_idle) == 0


def test_buffered_histogram__forked_with_unflushed_observations__counted_once():
    # Given a process with observations not yet flushed
    _, buffered = _histogram_pair()
    for _ in range(3):
        buffered.observe(0.05)

    # When it forks a child that observes once and flushes
    def child():
        buffered.observe(0.0001)
        buffered.flush()
        counts, total = _values(buffered.histogram)
        assert (counts, total) == ([1.0, 0.0, 0.0, 0.0], pytest.approx(0.0001))

    assert _in_child(child) == 0
    # Then the child wrote its own observation only, and the parent's three are the parent's
    buffered.flush()
    counts, total = _values(buffered.histogram)
    assert (counts, total) == ([0.0, 0.0, 3.0, 0.0], pytest.approx(0.15))
