"""Benchmark: application servers side by side (granian, gunicorn), for bench_decide.py's load.

Run ``.venv/bin/python benchmarks/bench_servers.py`` (``--rounds``, ``--seconds``). It starts
one server (2 workers) per configuration at once, on the same throwaway SQLite database
and redis-server as bench_decide.py, then loads them in turn, round after round: ``wrk -t2 -c32``
for a few seconds against the bare JsonResponse view, then against /api/v1/decide rotating over
1,000 visitors. Alternating short rounds is what makes configurations comparable on a shared,
noisy machine (a slower minute slows every configuration's round in it); each figure printed is
the median over rounds, with the median of the per-round decide / bare ratios.

It informs a choice, it judges nothing (bench_decide.py holds the targets), and exits 0.

Configurations:
- ``granian``: granian (WSGI), as config/web.py starts it (the Procfile's server): 2 workers,
  one application thread each.
- ``granian-2t``: the same with two application threads per worker.
- ``sync``: gunicorn sync workers as the Procfile ran them until issue #18. Their config
  (config/gunicorn_conf.py, removed with gunicorn) closed a connection at once after a request
  read whole, which every request of this load is: benchmarks/gunicorn_no_linger.py's plain close
  is that behaviour for this load.
- ``sync-gunicorn-close``: sync workers without that config: gunicorn's own close, which lingers
  after every request.
- ``gthread-2t`` / ``gthread-4t``: threaded workers with keep-alive connections.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks import _support as support  # noqa: E402  (needs ROOT on the path first)
from benchmarks import bench_decide as bd  # noqa: E402

CONFIGURATIONS: dict[str, list[str]] = {
    "granian": ["granian"],
    "granian-2t": ["granian", "WEB_THREADS=2"],
    "sync": ["-c", str(ROOT / "benchmarks" / "gunicorn_no_linger.py")],
    "sync-gunicorn-close": [],
    "gthread-2t": ["--worker-class", "gthread", "--threads", "2"],
    "gthread-4t": ["--worker-class", "gthread", "--threads", "4"],
}


def server_command(configuration: list[str], port: int) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment of one configuration on `port`."""
    if configuration[:1] == ["granian"]:
        from config.web import granian_args

        server_env = dict(item.split("=", 1) for item in configuration[1:])
        server_env |= {"WEB_CONCURRENCY": "2", "WEB_ACCESS_LOG": "false"}
        saved = {k: os.environ.get(k) for k in server_env}
        os.environ.update(server_env)
        try:
            args = granian_args(bind=f"127.0.0.1:{port}")
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return [sys.executable, "-m", "granian", *args], server_env
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--log-level", "warning",
        *configuration,
    ]  # fmt: skip
    return command, {"WEB_ACCESS_LOG": "false"}


def _wrk(url: str, seconds: int, script: Path | None) -> tuple[float, float]:
    """bench_decide's wrk load (same connections); its requests per second and p99 in ms."""
    result = support.wrk(url, seconds, script, connections=bd.CONNECTIONS)
    return result["rps"], result["p99_ms"]


def _load() -> str:
    """The 1-minute load average (the machine is shared: every figure is printed beside it)."""
    return f"{os.getloadavg()[0]:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5, help="per load, per round")
    parser.add_argument(
        "--only", nargs="*", choices=list(CONFIGURATIONS), help="a subset of the configurations"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    names = args.only or list(CONFIGURATIONS)

    load_before = _load()
    tmp = Path(tempfile.mkdtemp(prefix="mosaic-bench-servers-"))
    redis_process, env = bd.environment_start(tmp)
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        bd.seed_small()
        for i in range(1, bd.HTTP_VISITORS + 1):
            bd.profile_store(f"bench-{i}")
        decide_path = f"/api/v1/decide?placements={','.join(bd.PLACEMENTS)}"
        script = tmp / "rotate.lua"
        script.write_text(bd.ROTATE_LUA % {"visitors": bd.HTTP_VISITORS, "path": decide_path})
        for name in names:
            port = support.free_port()
            command, server_env = server_command(CONFIGURATIONS[name], port)
            process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env, **server_env})
            servers[name] = (process, f"http://127.0.0.1:{port}")
        for process, base in servers.values():
            bd.server_wait(process, base)
            _wrk(f"{base}{decide_path}&visitor=warm", 3, script)  # snapshots, profile caches

        results: dict[str, dict[str, list[tuple[float, float]]]] = {
            name: {"bare": [], "decide": []} for name in names
        }
        for round_index in range(args.rounds):
            for name, (_, base) in servers.items():
                results[name]["bare"].append(_wrk(f"{base}/bench/bare", args.seconds, None))
                decide_url = f"{base}{decide_path}&visitor=x"
                results[name]["decide"].append(_wrk(decide_url, args.seconds, script))
            print(f"round {round_index + 1}/{args.rounds} done (load {_load()})", file=sys.stderr)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
        redis_process.terminate()
        redis_process.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"{args.rounds} rounds of {args.seconds} s per load, wrk -t2 -c{bd.CONNECTIONS}; "
        f"medians over rounds; load average before/after: {load_before} / {_load()}"
    )
    header = ("configuration", "bare req/s", "bare p99", "decide req/s", "decide p99", "ratio")
    print("{:<20} {:>11} {:>10} {:>13} {:>11} {:>6}".format(*header))
    for name, r in results.items():
        ratios = [d[0] / b[0] for d, b in zip(r["decide"], r["bare"], strict=True)]
        print(
            f"{name:<20} {statistics.median(x[0] for x in r['bare']):>11.0f}"
            f" {statistics.median(x[1] for x in r['bare']):>7.1f} ms"
            f" {statistics.median(x[0] for x in r['decide']):>13.0f}"
            f" {statistics.median(x[1] for x in r['decide']):>8.1f} ms"
            f" {statistics.median(ratios):>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
