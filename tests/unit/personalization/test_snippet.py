"""The JS snippet: small, dependency-free, served as a static file, with the promised contract."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SNIPPET = ROOT / "personalization" / "static" / "mosaic" / "mosaic.js"
MAX_GZIPPED = 5 * 1024


def test_snippet__gzipped__under_5_kb():
    size = len(gzip.compress(SNIPPET.read_bytes(), compresslevel=9))
    assert size < MAX_GZIPPED, f"mosaic.js is {size} bytes gzipped (budget {MAX_GZIPPED})"


def test_snippet__no_dependencies__plain_script():
    source = SNIPPET.read_text()
    for forbidden in ("import ", "require(", "export "):
        assert forbidden not in source, forbidden


@pytest.mark.parametrize(
    "needle",
    [
        "[data-mosaic-placement]",  # finds placements and hides only them
        "visibility:hidden",
        '"/decide"',
        '"/events"',
        '"/consent"',
        '"mosaic:decided"',
        "mosaic_vid",
        "mosaic_consent",
        "SameSite=Lax",
        "globalPrivacyControl",
        "randomUUID",
        "mosaicTimeout",  # data-mosaic-timeout
    ],
)
def test_snippet__contract__present(needle):
    assert needle in SNIPPET.read_text()


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed: syntax not checked")
def test_snippet__syntax__valid():
    result = subprocess.run(
        ["node", "--check", str(SNIPPET)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_snippet__static_url__served(client):
    response = client.get("/static/mosaic/mosaic.js")
    assert response.status_code == 200
    assert b"window.mosaic" in b"".join(response.streaming_content)
