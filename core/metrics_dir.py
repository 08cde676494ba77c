"""Where this process group's Prometheus files live (multiprocess mode), claimed before any metric.

prometheus-client's multiprocess mode has every process write its counters to memory-mapped files
in PROMETHEUS_MULTIPROC_DIR; `/metrics` merges every file, so a scrape answered by one web
worker sums all workers and the Celery worker's processes. The variable must be set before the
first metric value is created, and inherited by child processes, so a *group leader* (the web
process, config/web.py, before it becomes granian's main process; else the first Django process:
settings call `claim`) takes a directory `<root>/<pid>` and exports it; its children (granian's
worker processes, Celery pool processes) inherit it and write their own files (named by their pid)
there. No server hook is needed. At claim time the directories of leaders no longer alive are
removed: a restart starts from clean files (counters restart from zero, which Prometheus reads as
a reset).

This module imports nothing from prometheus_client on purpose: importing it first would fix the
library's value class before the variable is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV_NAME = "PROMETHEUS_MULTIPROC_DIR"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def claim(root: Path) -> Path:
    """Export this process's group directory (claiming one under `root` unless inherited)."""
    inherited = os.environ.get(ENV_NAME)
    if inherited:
        return Path(inherited)
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.isdigit() and not _alive(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
    mine = root / str(os.getpid())
    shutil.rmtree(mine, ignore_errors=True)  # a dead leader's directory with our recycled pid
    mine.mkdir()
    os.environ[ENV_NAME] = str(mine)
    return mine


def root_of(group_dir: str | Path) -> Path:
    """The directory holding every group's directory (what `/metrics` merges)."""
    return Path(group_dir).parent
