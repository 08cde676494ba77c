"""What a web process loads: the heavy model libraries stay out of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_PROBE = """
import json, sys
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns  # every view module, and the admin's
from config.wsgi import application
print(json.dumps(sorted(m for m in ("sklearn", "pandas", "implicit") if m in sys.modules)))
"""


def _probe_printed(probe: str, tmp_path, **env) -> list[str]:
    """What `probe` prints last (JSON), run in a fresh interpreter with the project's settings."""
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "MOSAIC_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_web_process__started__no_model_library_imported(tmp_path):
    # Given a web process's start-up: settings, every URL's view and the admin registered
    # When it has loaded everything it serves
    imported = _probe_printed(_PROBE, tmp_path)
    # Then scikit-learn, pandas and implicit were not imported (workers import them when they fit)
    assert imported == []


_FROZEN_PROBE = """
import json, sys
import django
django.setup()
from config.wsgi import application
loaded = set(sys.modules)
from django.urls import get_resolver
get_resolver().url_patterns  # what a first request loads
print(json.dumps(sorted(set(sys.modules) - loaded)))
"""


def test_web_process__started__every_view_loaded_before_the_freeze(tmp_path):
    # Given a web process's start-up (config.wsgi freezes the heap it has loaded)
    # When the URLconf is loaded, as the first request does
    imported = _probe_printed(_FROZEN_PROBE, tmp_path, WEB_ACCESS_LOG="false")
    # Then it imports nothing new: the views and what they import (scipy, pydantic) were frozen
    # with the rest instead of being walked by every full collection afterwards
    assert imported == []
