"""Keyed pseudonymisation of external ids: only HMAC-SHA256 digests are ever stored.

The key comes from settings.PSEUDONYMIZATION_KEY; rotating it re-keys nobody (old digests no
longer match new ids), which is documented in README as a deliberate "forget everyone" action.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=4)
def _key_bytes(key: str) -> bytes:
    return key.encode()


def pseudonymize(raw_id: str) -> str:
    key = _key_bytes(settings.PSEUDONYMIZATION_KEY)
    return hmac.new(key, raw_id.encode(), hashlib.sha256).hexdigest()
