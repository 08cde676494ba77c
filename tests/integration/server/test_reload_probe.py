"""A measurement, not a check (opt-in: MOSAIC_MEASURE_RELOAD=1): health probes every 30 ms for
twice the respawn interval plus 10 s after each of two SIGHUP reloads of the real web server,
printing how many failed (refused), with granian's default respawn interval and Mosaic's.

docs/architecture.md ("Reload") quotes what it printed. granian replaces the workers one at a
time and stops the old one `--respawn-interval` seconds (granian: 3.5; Mosaic:
WEB_RESPAWN_INTERVAL_S, 15) after starting the new one, ready or not; on Linux each worker
listens on its own socket, so while no new worker has loaded the application yet, connections
are refused. Run:

    MOSAIC_MEASURE_RELOAD=1 python -m pytest -s tests/integration/server/test_reload_probe.py
"""

from __future__ import annotations

import collections
import os
import signal
import time

import pytest

from tests.conftest import wait_for
from tests.integration.server.conftest import start_web_server
from tests.integration.server.test_granian import _get, _workers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("MOSAIC_MEASURE_RELOAD"), reason="a measurement: MOSAIC_MEASURE_RELOAD=1"
    ),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("respawn_interval", ["3.5", "15"])
def test_web_server__sighup_reloads__refused_probes_counted(redis_url, tmp_path, respawn_interval):
    # Given the web server (2 workers) with granian's respawn interval
    server = start_web_server(
        redis_url, tmp_path / "web.log", WEB_RESPAWN_INTERVAL_S=respawn_interval
    )
    window_seconds = 2 * float(respawn_interval) + 10
    failures: list[tuple[int, float, str]] = []
    total = 0
    try:
        for reload_ in range(2):
            before = wait_for(
                lambda: w if len(w := _workers(server.process.pid)) == 2 else None, timeout=30
            )
            # When it is told to reload, and probed every 30 ms until both workers were replaced
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGHUP)
            while time.monotonic() < signalled + window_seconds:
                total += 1
                try:
                    status = _get(server.base, "/healthz", timeout=5)[0]
                    if status != 200:
                        failures.append((reload_, time.monotonic() - signalled, str(status)))
                except OSError as exc:
                    failures.append((reload_, time.monotonic() - signalled, type(exc).__name__))
                time.sleep(0.03)
            after = wait_for(
                lambda: w if len(w := _workers(server.process.pid)) == 2 else None, timeout=30
            )
            # Then the workers were replaced (the measurement is printed)
            assert not (after & before)
    finally:
        server.stop()
    kinds = collections.Counter((reload_, kind) for reload_, _, kind in failures)
    window = (
        f"{min(t for _, t, _ in failures):.1f}-{max(t for _, t, _ in failures):.1f} s"
        if failures
        else "none"
    )
    print(
        f"\nrespawn interval {respawn_interval} s: {len(failures)} of {total} probes failed "
        f"(after SIGHUP: {window}); {dict(kinds)}"
    )
