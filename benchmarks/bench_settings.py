"""Settings for benchmarks/bench_decide.py: the project's settings plus a bare comparison view."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bench_urls"
