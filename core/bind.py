"""The URL at which `make run`'s web server can be reached, from the MOSAIC_BIND address that the
Procfile passes to gunicorn's --bind (so what `make run` prints is what it binds)."""

from __future__ import annotations

import os
import sys

DEFAULT_BIND = "127.0.0.1:8000"
_ANY_HOST = {"", "0.0.0.0", "::", "[::]", "*"}


def bind_base_url(bind: str) -> str:
    """http://host:port for gunicorn's --bind value; an all-interfaces host is reached at
    127.0.0.1 from this machine; a unix socket is named as it is (no URL)."""
    bind = (bind or "").strip() or DEFAULT_BIND
    if bind.startswith(("unix:", "fd://")):
        return bind
    if bind.startswith("[") and "]:" in bind:  # [::1]:8000
        host, port = bind[1:].split("]:", 1)
        host = f"[{host}]"
    elif ":" in bind:
        host, _, port = bind.rpartition(":")
    else:
        host, port = bind, "8000"  # gunicorn's default port
    if host in _ANY_HOST or host == "[::]":
        host = "127.0.0.1"
    return f"http://{host}:{port}"


if __name__ == "__main__":
    sys.stdout.write(bind_base_url(os.environ.get("MOSAIC_BIND", DEFAULT_BIND)) + "\n")
