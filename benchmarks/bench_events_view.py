"""Benchmark: CPU per event of POST /api/v1/events in process, and what the collector costs.

Run ``.venv/bin/python benchmarks/bench_events_view.py`` (``--batches N`` of 500 events, default
40; ``--root DIR``: the tree to import, e.g. a detached worktree of an older commit, so that two
trees are measured by the same script). It starts a throwaway redis-server, migrates a SQLite
database in a temporary directory, loads ``config.wsgi`` as a web process does (it freezes the
heap it has loaded), posts two warm-up batches, then N batches of bench_ingest.py's realistic
events through Django's test client, and prints the process CPU time per event, the garbage
collections during the measured batches (full ones apart, with their CPU) and how many objects
the collector tracks (not frozen). Informs, exits 0. What it leaves out: the HTTP server, the
worker and PostgreSQL (bench_ingest.py measures those).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    root = args.root.resolve()
    sys.path.insert(0, str(root))
    os.chdir(root)
    work = Path(tempfile.mkdtemp(prefix="mosaic-bench-events-view-"))
    try:
        _measure(args, root, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(args, root: Path, work: Path) -> None:
    """The measurement, in `work` (removed after by the caller)."""
    from benchmarks import _support as support
    from benchmarks.bench_ingest import BATCH, make_events

    with support.redis_server(work) as redis_url:
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": f"sqlite:///{work}/db.sqlite3",
                "REDIS_URL": redis_url,
                "CELERY_BROKER_URL": redis_url,
                "MOSAIC_VAR_DIR": str(work / "var"),
                "SECRET_KEY": secrets.token_urlsafe(32),
                "PSEUDONYMIZATION_KEY": secrets.token_urlsafe(32),
                "LOG_LEVEL": "WARNING",
                "DEBUG": "false",
                "WEB_ACCESS_LOG": "false",
                "ALLOWED_HOSTS": "testserver",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)
        gc.collect()
        from django.test import Client

        import config.wsgi  # noqa: F401  (a web process's start-up: it freezes the heap)

        client = Client()
        events = make_events(BATCH * (args.batches + 2), 2000)
        bodies = [
            json.dumps({"events": events[i : i + BATCH]}).encode()
            for i in range(0, len(events), BATCH)
        ]
        for body in bodies[:2]:  # warm-up: what a first request loads
            answer = client.post("/api/v1/events", body, content_type="application/json")
            assert answer.status_code == 202, answer.content[:300]
        tracked = len(gc.get_objects())
        collections = {0: 0, 1: 0, 2: 0}
        full_cpu = [0.0, 0.0]

        def count(phase: str, info: dict) -> None:
            if info["generation"] != 2:
                if phase == "stop":
                    collections[info["generation"]] += 1
                return
            if phase == "start":
                full_cpu[1] = time.process_time()
            else:
                collections[2] += 1
                full_cpu[0] += time.process_time() - full_cpu[1]

        gc.callbacks.append(count)
        started = time.process_time()
        for body in bodies[2:]:
            answer = client.post("/api/v1/events", body, content_type="application/json")
            assert answer.status_code == 202, answer.status_code
        cpu = time.process_time() - started
        gc.callbacks.remove(count)
        total = args.batches * BATCH
        print(
            f"{root}: {args.batches} batches of {BATCH}: CPU {cpu / total * 1e6:.1f} µs per event; "
            f"collections {collections[0]} / {collections[1]} / {collections[2]} (gen 0/1/2), "
            f"full ones {full_cpu[0] * 1000:.0f} ms CPU; "
            f"objects tracked after warm-up {tracked:,}, "
            f"frozen {gc.get_freeze_count():,}"
        )


if __name__ == "__main__":
    main()
