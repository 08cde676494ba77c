"""Loaded with `-p tests.process_isolation` (pyproject addopts), before Django's settings: what
each test process (each pytest-xdist worker) must not share with another.

- PROMETHEUS_MULTIPROC_DIR: a private metrics root per test process, so a scrape sums this
  process, its forked children and the worker it starts, never a parallel test process; removed
  when the test process exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_root = Path(tempfile.mkdtemp(prefix="mosaic-test-metrics-"))
atexit.register(shutil.rmtree, _root, ignore_errors=True)
_group = _root / str(os.getpid())
_group.mkdir()
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_group)
