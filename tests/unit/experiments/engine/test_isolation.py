"""The engine is pure: importing it must not pull in Django (or Celery)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]


def test_import__experiments_engine__does_not_import_django():
    # Given a fresh interpreter at the repository root
    code = (
        "import experiments.engine, sys; "
        "assert 'django' not in sys.modules, 'django imported'; "
        "assert 'celery' not in sys.modules, 'celery imported'"
    )
    # When importing experiments.engine (which imports the experiments package first)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    # Then neither Django nor Celery was imported
    assert result.returncode == 0, result.stderr
