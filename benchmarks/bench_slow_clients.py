"""Benchmark: how many slow-header (slowloris) connections the web process takes before health
probes suffer (issue #13 item 2, docs/security.md).

Run ``.venv/bin/python benchmarks/bench_slow_clients.py --connections 24 200 1000``. Starts the
web process as the Procfile does (``python -m config.web``, 2 workers; ``--backpressure``
overrides WEB_BACKPRESSURE) on a throwaway SQLite database and redis-server (as bench_decide.py),
then for each count: opens that many loopback connections that send a request line and then one
header line per second and never finish, and meanwhile sends 16 health probes (GET /healthz, a
new connection each, 0.5 s apart, 3 s timeout). Prints the slowest probe and the failed ones.
Bounded: each count runs about 10 s; loopback only. Informs the docs, judges nothing, exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_decide as bd  # noqa: E402  (needs ROOT on the path first)

PROBES = 16


def slow_round(port: int, connections: int) -> tuple[float, int, int]:
    """(slowest probe in s, failed probes, connections cut off by the server)."""
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(sock)
    stop = threading.Event()
    cut = set()

    def drip() -> None:
        while not stop.is_set():
            for index, sock in enumerate(socks):
                if index in cut:
                    continue
                try:
                    sock.sendall(b"X-Slow: a\r\n")
                except OSError:
                    cut.add(index)
            stop.wait(1)

    dripper = threading.Thread(target=drip)
    dripper.start()
    slowest, failed = 0.0, 0
    for _ in range(PROBES):
        start = time.monotonic()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3).read()
            slowest = max(slowest, time.monotonic() - start)
        except OSError:
            failed += 1
        time.sleep(0.5)
    stop.set()
    dripper.join()
    for sock in socks:
        sock.close()
    return slowest, failed, len(cut)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[24, 200, 1000])
    parser.add_argument("--backpressure", type=int, default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mosaic-bench-slow-"))
    redis_process, env = bd.environment_start(tmp)
    port = bd._free_port()
    server_env = {**os.environ, **env, "MOSAIC_BIND": f"127.0.0.1:{port}", "WEB_ACCESS_LOG": "0"}
    if args.backpressure:
        server_env["WEB_BACKPRESSURE"] = str(args.backpressure)
    server = subprocess.Popen([sys.executable, "-m", "config.web"], cwd=ROOT, env=server_env)
    rows = []
    try:
        bd.server_wait(server, f"http://127.0.0.1:{port}")
        for count in args.connections:
            load = f"{os.getloadavg()[0]:.1f}"
            slowest, failed, cut = slow_round(port, count)
            rows.append((count, slowest, failed, cut, load))
    finally:
        server.terminate()
        server.wait(timeout=30)
        redis_process.terminate()
        redis_process.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    backpressure = args.backpressure or "default"
    print(f"web process: python -m config.web, 2 workers, backpressure {backpressure}")
    print("slow connections  slowest probe  failed probes  cut off by server  load avg")
    for count, slowest, failed, cut, load in rows:
        print(
            f"{count:>16}  {slowest * 1000:>10.0f} ms  {failed:>7}/{PROBES}  {cut:>17}  {load:>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
