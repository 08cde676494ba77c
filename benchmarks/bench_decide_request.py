"""Benchmark: one decide request through Django's whole handler in process, keyed vs keyless.

Run ``.venv/bin/python benchmarks/bench_decide_request.py`` (``--rounds``; ``--profile N``: a
cProfile of N keyed requests, top functions by cumulative time, instead of the timing). Same
throwaway environment and content as bench_decide.py (3 placements x 10 conditional variants, an
experiment, renders; the visitor's profile in Redis with the profile cache on). Each request is
a WSGI environ handed to the web process's application as config/wsgi.py composes it (without
its access log): decide through personalization.api.handler, the bare view (the HTTP
benchmark's baseline, same headers) through Django's full handler:
- ``keyless``: MOSAIC_REQUIRE_API_KEY=false, no key, no Origin (the embedded demo's calls);
- ``keyed``: MOSAIC_REQUIRE_API_KEY=true, a publishable key (X-Mosaic-Key) and an allowed Origin,
  as production's browsers call it (authentication, origin rule, rate limit, CORS headers).
Median over interleaved rounds of the mean µs per request. Informs, judges nothing, exits 0.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import shutil
import sys
import tempfile
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks import _support as support  # noqa: E402  (needs ROOT on the path first)
from benchmarks import bench_decide as bd  # noqa: E402

ORIGIN = "https://shop.example"


def _environ(path_query: str, headers: dict[str, str]) -> dict:
    path, _, query = path_query.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": bd.REQUEST["user_agent"],
        "HTTP_ACCEPT_LANGUAGE": bd.REQUEST["accept_language"],
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    return environ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile", type=int, default=0, help="profile this many keyed calls")
    parser.add_argument(
        "--sort", default="cumulative", help="the profile's order (cumulative, tottime, ...)"
    )
    parser.add_argument("--lines", type=int, default=45, help="the profile's lines")
    parser.add_argument(
        "--callers", default="", help="with --profile: who calls the functions matching this"
    )
    parser.add_argument(
        "--loop",
        type=int,
        default=0,
        help="only run this many keyed calls (for an outside sampler: py-spy record -- ...)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mosaic-bench-request-"))
    redis_process, _ = bd.environment_start(tmp)
    try:
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler

        from access.models import ApiKeyKind
        from access.services import api_key_create

        bd.seed_small()
        bd.profile_store(bd.VISITOR)
        _, raw = api_key_create(
            name="bench",
            kind=ApiKeyKind.PUBLISHABLE,
            allowed_origins=[ORIGIN],
            rate_limit_per_minute=10**9,
        )
        from personalization.api.handler import decide_dispatched

        # As config/wsgi.py composes it (without the access log): decide calls without cookies
        # through the lean handler, the bare view through Django's.
        handler = decide_dispatched(WSGIHandler())
        # As the web process does after start-up (config/wsgi.py): a full collection walking
        # every module's objects would land in whichever round it falls in.
        gc.collect()
        gc.freeze()
        path = f"/api/v1/decide?placements={','.join(bd.PLACEMENTS)}&visitor={bd.VISITOR}"
        keyless_env = _environ(path, {})
        keyed_env = _environ(path, {"X-Mosaic-Key": raw, "Origin": ORIGIN})
        # The HTTP benchmark's baseline: a bare JsonResponse view with the same headers.
        bare_env = _environ("/bench/bare", {"X-Mosaic-Key": raw, "Origin": ORIGIN})
        statuses: dict[str, set] = {"keyless": set(), "keyed": set(), "bare": set()}

        def call(name: str, environ: dict):
            def run() -> None:
                out: list = []
                body = handler(dict(environ), lambda status, headers: out.append(status))
                try:
                    b"".join(body)
                finally:
                    # As a WSGI server does: Django's request_finished (its database and cache
                    # hygiene) runs here for Django's responses, part of every request's cost.
                    if hasattr(body, "close"):
                        body.close()
                statuses[name].add(out[0])

            return run

        def keyless_mode() -> None:
            settings.MOSAIC_REQUIRE_API_KEY = False

        def keyed_mode() -> None:
            settings.MOSAIC_REQUIRE_API_KEY = True

        if args.loop:
            keyed_mode()
            run = call("keyed", keyed_env)
            for _ in range(args.loop):
                run()
            return 0
        if args.profile:
            keyed_mode()
            run = call("keyed", keyed_env)
            for _ in range(200):
                run()
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.profile):
                run()
            profile.disable()
            stream = io.StringIO()
            stats = pstats.Stats(profile, stream=stream).sort_stats(args.sort)
            if args.callers:
                stats.print_callers(args.callers)
            else:
                stats.print_stats(args.lines)
            print(stream.getvalue())
            return 0
        result = support.interleaved_us(
            {
                "keyless": call("keyless", keyless_env),
                "keyed": call("keyed", keyed_env),
                "bare": call("bare", bare_env),
            },
            rounds=args.rounds,
            enter={"keyless": keyless_mode, "keyed": keyed_mode, "bare": keyed_mode},
        )
        load = f"{os.getloadavg()[0]:.1f}"
        # Commands Redis processed per request (its own counter, every client of this process:
        # profile cache, snapshot version checks, exposures, rate limit), over 1,000 requests.
        commands = {}
        redis_client = redis.Redis.from_url(settings.REDIS_URL)
        for name, env in (("keyless", keyless_env), ("keyed", keyed_env), ("bare", bare_env)):
            (keyless_mode if name == "keyless" else keyed_mode)()
            run = call(name, env)
            before = redis_client.info("stats")["total_commands_processed"]
            for _ in range(1000):
                run()
            after = redis_client.info("stats")["total_commands_processed"]
            commands[name] = (after - before - 1) / 1000  # less the INFO itself
        print(f"decide request through Django's handler, in process (load average {load})")
        for name, us in result.items():
            print(
                f"{name:<8} {us:8.1f} µs/request  statuses {sorted(statuses[name])}  "
                f"Redis commands/request {commands[name]:.3f}"
            )
        print(f"keyed / keyless {result['keyed'] / result['keyless']:.2f}")
        # What bench_decide.py's HTTP ratio compares, without the server and the load generator.
        print(f"bare / keyed (in process) {result['bare'] / result['keyed']:.2f}")
    finally:
        from personalization import profile_cache

        profile_cache.reset()
        redis_process.terminate()
        redis_process.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
