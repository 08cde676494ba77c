"""Benchmark: events per second from HTTP batch POST to durable rows in PostgreSQL.

Run ``.venv/bin/python benchmarks/bench_ingest.py`` (``--quick`` for a short run). The script builds
everything it needs and removes it afterwards: a throwaway PostgreSQL cluster on loopback
(initdb/pg_ctl from /usr/lib/postgresql/*/bin, as the ``postgres`` user when run as root), its own
redis-server (AOF, fsync every second: the production set-up), ``migrate``, the web process
(granian, 2 workers) and a Celery worker as subprocesses. A load generator (threads, keep-alive
HTTP/1.1) POSTs batches of 500 realistic events (three condition segments are live, so every touched
profile is re-evaluated and its cached document rewritten); the clock runs from the first POST until
every event is a row in ``segments_event`` (polled with COUNT). Baseline: the same rows inserted
with COPY (psycopg's write_row) into a copy of the events table (same indexes), 500 rows per
committed transaction, in the same run after the servers stop; median of three rounds. A stricter
second baseline (COPY lines formatted by hand with orjson) is reported beside it. Peak RSS (VmHWM)
of the web and Celery processes is read from /proc at the end.

Exits 1 when a target is missed: >= 10,000 events/s, and >= 0.5 of the raw insert rate. Exits 0
with a loud message when no PostgreSQL binaries are installed (nothing measured).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks import _support as support  # noqa: E402  (needs ROOT on the path first)

RATE_TARGET = 10_000.0
RATIO_TARGET = 0.5
BATCH = 500
TYPES = [
    ("page_view", 45),
    ("product_view", 30),
    ("add_to_cart", 10),
    ("remove_from_cart", 2),
    ("purchase", 5),
    ("search", 8),
]
CATEGORIES = ["shoes", "shirts", "books", "garden", "kitchen", "toys", "music", "sports", "beauty"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
]


SEGMENTS_CODE = """
from segments.models import Segment
for key, condition in [
    ("buyers", {"profile.aggregates.frequency": {"$gte": 1}}),
    ("cart-abandoners", {"profile.aggregates.cart_value": {"$gt": 0},
                         "profile.aggregates.purchased_since_last_add_to_cart": False}),
    ("engaged", {"profile.aggregates.sessions": {"$gte": 2}}),
]:
    Segment.objects.create(key=key, name=key, condition=condition)
"""


def make_events(total: int, visitors: int, seed: int = 42) -> list[dict]:
    """Realistic events: typed mix, categories, prices, page context; times over 6 hours."""
    rng = random.Random(seed)
    names, weights = zip(*TYPES, strict=True)
    start = datetime.now(UTC) - timedelta(hours=6)
    step = 6 * 3600 / total
    events = []
    for i in range(total):
        type_ = rng.choices(names, weights)[0]
        visitor = f"bench-visitor-{rng.randrange(visitors)}"
        category = rng.choice(CATEGORIES)
        product = f"sku-{rng.randrange(5000):05d}"
        event = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "visitor": visitor,
            "type": type_,
            "occurred_at": (start + timedelta(seconds=i * step)).isoformat(),
            "properties": {"category": category, "product_id": product},
            "context": {
                "url": f"https://shop.example/{category}/{product}",
                "user_agent": rng.choice(AGENTS),
                "locale": rng.choice(["en-GB", "de-DE", "fr-FR"]),
            },
        }
        if type_ in ("add_to_cart", "remove_from_cart", "purchase"):
            event["value"] = f"{rng.randint(500, 25000) / 100:.2f}"
            event["currency"] = "EUR"
        if type_ == "search":
            event["properties"] = {"query": rng.choice(CATEGORIES) + " sale"}
        events.append(event)
    return events


def _post_all(port: int, bodies: list[bytes], threads: int, deadline: float) -> dict:
    """POST every body (keep-alive, `threads` connections); returns counts and the end time."""
    lock = threading.Lock()
    queue = list(reversed(bodies))
    stats = {"ok": 0, "errors": 0, "statuses": {}}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        while time.monotonic() < deadline:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            for _attempt in range(3):
                try:
                    conn.request("POST", "/api/v1/events", body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            else:
                with lock:
                    stats["errors"] += 1
                continue
            with lock:
                stats["statuses"][response.status] = stats["statuses"].get(response.status, 0) + 1
                stats["ok"] += response.status == 202
        conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    stats["posted_at"] = time.perf_counter()
    return stats


def _count(conninfo: str, table: str = "segments_event") -> int:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def raw_insert(conninfo: str, events: list[dict], visitors: dict[str, int]) -> float:
    """COPY the same rows into a same-shaped table, 500 rows per commit; returns seconds."""
    import psycopg

    now = datetime.now(UTC)
    columns = (
        "event_id, profile_id, type, name, properties, value, currency, context, occurred_at,"
        " received_at"
    )
    with psycopg.connect(conninfo) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw_event")
        conn.execute(
            "CREATE TABLE bench_raw_event (LIKE segments_event INCLUDING ALL)"
        )  # same columns, defaults, indexes and unique constraint; no foreign key
        conn.commit()
        started = time.perf_counter()
        for start in range(0, len(events), BATCH):
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY bench_raw_event ({columns}) FROM STDIN") as cp,
            ):
                for e in events[start : start + BATCH]:
                    cp.write_row(
                        (
                            e["event_id"],
                            visitors[e["visitor"]],
                            e["type"],
                            "",
                            json.dumps(e["properties"]),
                            e.get("value"),
                            e.get("currency", ""),
                            json.dumps(e["context"]),
                            e["occurred_at"],
                            now,
                        )
                    )
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw_event")
        conn.commit()
    return elapsed


def raw_insert_text(conninfo: str, events: list[dict], visitors: dict[str, int]) -> float:
    """The same rows again, each COPY line formatted by hand with orjson (as ingestion's stage 1
    formats its own): a stricter baseline than psycopg's write_row. Reported, not judged."""
    import orjson
    import psycopg

    def text(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    now = datetime.now(UTC).isoformat()
    null = "\\N"
    columns = (
        "event_id, profile_id, type, name, properties, value, currency, context, occurred_at,"
        " received_at"
    )
    with psycopg.connect(conninfo) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw_event")
        conn.execute("CREATE TABLE bench_raw_event (LIKE segments_event INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        for start in range(0, len(events), BATCH):
            lines = [
                f"{e['event_id']}\t{visitors[e['visitor']]}\t{e['type']}\t\t"
                f"{text(orjson.dumps(e['properties']).decode())}\t{e.get('value') or null}\t"
                f"{e.get('currency', '')}\t{text(orjson.dumps(e['context']).decode())}\t"
                f"{e['occurred_at']}\t{now}\n"
                for e in events[start : start + BATCH]
            ]
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY bench_raw_event ({columns}) FROM STDIN") as cp,
            ):
                cp.write("".join(lines))
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw_event")
        conn.commit()
    return elapsed


def _children(pid: int) -> list[int]:
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(Path(stat).parent.name)
            found += [child, *_children(child)]
    return found


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (clock ticks from /proc/<pid>/stat)."""
    total = 0
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _cpu_groups(web: subprocess.Popen, worker: subprocess.Popen) -> dict[str, list[int]]:
    """The processes whose CPU time is reported, by component (taken anew: pools fork)."""
    return {
        "web": [web.pid, *_children(web.pid)],
        "worker": [worker.pid, *_children(worker.pid)],
        "postgres": _postgres_pids(),
        "load generator": [os.getpid()],
    }


def _postgres_pids() -> list[int]:
    found = []
    for comm in glob.glob("/proc/[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if Path(comm).read_text().strip().startswith("postgres"):
                found.append(int(Path(comm).parent.name))
    return found


def _peak_rss_mb(pid: int) -> tuple[float, int]:
    """Sum of VmHWM over the process and its descendants (MB), and how many processes."""
    total = 0
    pids = [pid, *_children(pid)]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024, len(pids)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(
    *,
    total: int,
    visitors: int,
    threads: int,
    worker_concurrency: int,
    time_limit: float,
    keep_logs: Path | None = None,
) -> dict:
    pg_bin = support.postgres_bin()
    if pg_bin is None:
        return {"skipped": "no PostgreSQL binaries under /usr/lib/postgresql/*/bin"}
    workdir = Path(tempfile.mkdtemp(prefix="mosaic-bench-ingest-"))
    processes: list[subprocess.Popen] = []
    try:
        with (
            support.postgres_cluster(
                pg_bin, workdir / "pg", options="-c shared_buffers=256MB"
            ) as database_url,
            support.redis_server(workdir, persistent=True) as redis_url,
        ):
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "CELERY_BROKER_URL": redis_url,
                "MOSAIC_VAR_DIR": str(workdir / "var"),
                "SECRET_KEY": secrets.token_urlsafe(32),
                "PSEUDONYMIZATION_KEY": secrets.token_urlsafe(32),
                "LOG_LEVEL": "WARNING",
                "DEBUG": "false",
            }
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=env,
                check=True,
            )
            # Three condition segments, re-evaluated for every touched profile (real-time path).
            subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", SEGMENTS_CODE],
                cwd=ROOT,
                env=env,
                check=True,
            )
            web_port = support.free_port()
            web_log = workdir / "web.log"
            # The Procfile's web process (granian through config/web.py), 2 workers.
            web = subprocess.Popen(
                [sys.executable, "-m", "config.web"],
                cwd=ROOT,
                env={
                    **env,
                    "MOSAIC_BIND": f"127.0.0.1:{web_port}",
                    "WEB_CONCURRENCY": "2",
                    "WEB_ACCESS_LOG": "false",
                },
                stdout=web_log.open("w"),
                stderr=subprocess.STDOUT,
            )
            processes.append(web)
            worker_log = workdir / "worker.log"
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--concurrency",
                    str(worker_concurrency),
                    "--loglevel",
                    "INFO",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=env,
                stdout=worker_log.open("w"),
                stderr=subprocess.STDOUT,
            )
            processes.append(worker)
            support.wait_http(f"http://127.0.0.1:{web_port}/healthz", web)
            support.wait_log(worker_log, "ready", worker)

            events = make_events(total, visitors)
            bodies = [
                json.dumps({"events": events[i : i + BATCH]}).encode()
                for i in range(0, total, BATCH)
            ]
            conninfo = database_url.replace("postgres://", "postgresql://")

            # Warm-up: one small batch through the whole path (imports, connections).
            warm = make_events(BATCH, 50, seed=1)
            _post_all(web_port, [json.dumps({"events": warm}).encode()], 1, time.monotonic() + 60)
            deadline = time.monotonic() + 60
            while _count(conninfo) < BATCH and time.monotonic() < deadline:
                time.sleep(0.1)
            base = _count(conninfo)

            # CPU per component over the measured window (all share the same cores).
            cpu_before = {
                name: {pid: _cpu_seconds([pid]) for pid in pids}
                for name, pids in _cpu_groups(web, worker).items()
            }
            started = time.perf_counter()
            stop_at = time.monotonic() + time_limit
            stats = _post_all(web_port, bodies, threads, stop_at)
            accepted = stats["ok"] * BATCH
            stored = base
            while time.monotonic() < stop_at:
                stored = _count(conninfo)
                if stored - base >= accepted:
                    break
                time.sleep(0.05)
            finished = time.perf_counter()
            stored -= base
            # Stage 2 (aggregates, segments, cached documents) may still be folding the last
            # batches in: reported, not judged (the target is about durable rows).
            while time.monotonic() < stop_at and _count(conninfo, "segments_pendingaggregate"):
                time.sleep(0.05)
            aggregated = time.perf_counter()
            pending_left = _count(conninfo, "segments_pendingaggregate")
            # Processes started meanwhile (PostgreSQL backends, pool children) count from zero.
            groups_after = _cpu_groups(web, worker)
            cpu = {
                name: sum(
                    _cpu_seconds([pid]) - before_by_pid.get(pid, 0.0) for pid in groups_after[name]
                )
                for name, before_by_pid in cpu_before.items()
            }

            web_rss, web_n = _peak_rss_mb(web.pid)
            worker_rss, worker_n = _peak_rss_mb(worker.pid)
            for process in processes:
                _stop(process)

            visitor_ids = {f"bench-visitor-{i}": i + 1 for i in range(visitors)}
            # Three rounds of each baseline, alternating, median taken: one round moves by
            # +-15 % on this shared machine, and the ratio should not hinge on one.
            raw_rounds, raw_text_rounds = [], []
            for _round in range(3):
                raw_rounds.append(total / raw_insert(conninfo, events, visitor_ids))
                raw_text_rounds.append(total / raw_insert_text(conninfo, events, visitor_ids))
            return {
                "events": total,
                "visitors": visitors,
                "accepted": accepted,
                "stored": stored,
                "statuses": stats["statuses"],
                "post_seconds": stats["posted_at"] - started,
                "seconds": finished - started,
                "rate": stored / (finished - started),
                "aggregated_seconds": aggregated - started,
                "cpu": cpu,
                "pending_left": pending_left,
                "http_rate": accepted / (stats["posted_at"] - started),
                "raw_rate": statistics.median(raw_rounds),
                "raw_rounds": raw_rounds,
                "raw_text_rate": statistics.median(raw_text_rounds),
                "raw_text_rounds": raw_text_rounds,
                "web_rss_mb": web_rss,
                "web_processes": web_n,
                "worker_rss_mb": worker_rss,
                "worker_processes": worker_n,
                "complete": stored >= total,
            }
    finally:
        for process in processes:
            _stop(process)
        if keep_logs is not None:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for name in ("web.log", "worker.log"):
                with contextlib.suppress(OSError):
                    shutil.copy(workdir / name, keep_logs / name)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 events over 1,000 visitors")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--visitors", type=int, default=None)
    parser.add_argument("--threads", type=int, default=4, help="load generator connections")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=3,
        help="Celery processes: one per ingestion lane (MOSAIC_INGEST_LANES, 2) plus aggregation",
    )
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds, at most")
    parser.add_argument(
        "--keep-logs", type=Path, default=None, help="copy the web and worker logs to this folder"
    )
    args = parser.parse_args(argv)
    total = args.events or (20_000 if args.quick else 200_000)
    visitors = args.visitors or (1_000 if args.quick else 5_000)
    total -= total % BATCH
    result = run(
        total=total,
        visitors=visitors,
        threads=args.threads,
        worker_concurrency=args.worker_concurrency,
        time_limit=args.time_limit,
        keep_logs=args.keep_logs,
    )
    if "skipped" in result:
        banner = "!" * 78
        print(
            f"{banner}\nSKIPPED: {result['skipped']}.\nNothing was measured. "
            f"Install PostgreSQL (apt-get install postgresql) to run it.\n{banner}"
        )
        return 0
    rate_ok = result["rate"] >= RATE_TARGET and result["complete"]
    ratio = result["rate"] / result["raw_rate"]
    ratio_ok = ratio >= RATIO_TARGET
    print(
        f"events {result['events']:,} over {result['visitors']:,} visitors, batches of {BATCH}, "
        f"{args.threads} client connections, granian 2 workers, "
        f"celery concurrency {args.worker_concurrency}"
    )
    print(f"HTTP answers: {result['statuses']}; stored {result['stored']:,}")
    print(f"{'measure':<40} {'value':>14} {'target':>12}  ok")
    rows = [
        (
            "POST → rows in DB (events/s)",
            f"{result['rate']:,.0f}",
            f"≥ {RATE_TARGET:,.0f}",
            rate_ok,
        ),
        ("  wall time (s)", f"{result['seconds']:.2f}", "", None),
        (
            "  until aggregates current (s)",
            f"{result['aggregated_seconds']:.2f}"
            + (f" ({result['pending_left']:,} left)" if result["pending_left"] else ""),
            "",
            None,
        ),
        ("HTTP accepted (events/s)", f"{result['http_rate']:,.0f}", "", None),
        (
            "raw COPY, 500 rows/commit (events/s)",
            f"{result['raw_rate']:,.0f}",
            "median",
            None,
        ),
        (
            "  its 3 rounds",
            " / ".join(f"{r / 1000:.1f}k" for r in result["raw_rounds"]),
            "",
            None,
        ),
        ("ratio to raw insert", f"{ratio:.2f}", f"≥ {RATIO_TARGET}", ratio_ok),
        (
            "raw COPY, lines by hand (events/s)",
            f"{result['raw_text_rate']:,.0f}",
            "median",
            None,
        ),
        (
            "  its 3 rounds",
            " / ".join(f"{r / 1000:.1f}k" for r in result["raw_text_rounds"]),
            "",
            None,
        ),
        ("  ratio to it (reported)", f"{result['rate'] / result['raw_text_rate']:.2f}", "", None),
        (
            f"peak RSS web ({result['web_processes']} processes, MB)",
            f"{result['web_rss_mb']:.0f}",
            "",
            None,
        ),
        (
            f"peak RSS worker ({result['worker_processes']} processes, MB)",
            f"{result['worker_rss_mb']:.0f}",
            "",
            None,
        ),
    ]
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("yes" if ok else "NO")
        print(f"{name:<40} {value:>14} {target:>12}  {mark}")
    # Where the CPU went, from the first POST until the aggregates were current (the load
    # generator's figure includes this script's polling; redis-server is not counted).
    per_event = {k: v / max(result["stored"], 1) * 1e6 for k, v in result["cpu"].items()}
    print(
        "CPU µs per event: "
        + ", ".join(f"{name} {us:.0f}" for name, us in per_event.items())
        + f" (total {sum(per_event.values()):.0f})"
    )
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    return 0 if rate_ok and ratio_ok else 1


if __name__ == "__main__":
    sys.exit(main())
