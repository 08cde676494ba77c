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
def _keyed(key: str) -> hmac.HMAC:
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def pseudonymize(raw_id: str) -> str:
    # A copy of an HMAC already keyed skips the key set-up, two thirds of a fresh hmac.new's
    # cost; ingestion computes thousands of these per batch.
    digest = _keyed(settings.PSEUDONYMIZATION_KEY).copy()
    digest.update(raw_id.encode())
    return digest.hexdigest()
