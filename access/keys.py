"""Key material: generation, digest and origin normalisation (pure functions, no Django models).

Keys carry 256 bits of randomness, so a plain SHA-256 digest is enough (no slow password hash):
nobody can brute-force the preimage, and lookups stay one indexed query. The digest is unkeyed on
purpose, so rotating SECRET_KEY does not silently invalidate every issued key.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from urllib.parse import urlsplit

PREFIXES = {"publishable": "mk_pub_", "secret": "mk_sec_"}
PREFIX_LENGTH = 12


def key_generate(kind: str) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_prefix(raw: str) -> str:
    return raw[:PREFIX_LENGTH]


# Asked for the request's Origin and each allowed origin of its key on every keyed call (and by
# CORS): a few origins recur, so their forms are remembered (bounded: the header is the caller's).
@functools.lru_cache(maxsize=1024)
def origin_normalize(origin: str) -> str:
    """scheme://host[:port], lower-cased, default ports dropped; "" for anything unparsable."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return ""
    if not parts.scheme or not parts.hostname:
        return ""
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = parts.hostname.lower() + (f":{port}" if port and port != default else "")
    return f"{scheme}://{netloc}"
