"""GrowthBook-compatible hashing: FNV-1a 32-bit, the ``hash`` of bucketing and namespaces.

Strings are hashed over their UTF-16 code units, exactly like the GrowthBook JavaScript SDK's
``charCodeAt`` loop (and the reference Python SDK 4.0 installed for the benchmarks). For ASCII and
every other character of the Basic Multilingual Plane a code unit is the code point, so this also
equals hashing ``ord()`` of each character, as older Python SDKs do; only characters above U+FFFF
(emoji, for instance) differ: they count as two surrogate code units, as in JavaScript. Hashing
UTF-8 bytes would be wrong for every non-ASCII character. The conformance suite has only ASCII
strings, so it cannot tell these apart; compatibility with the JavaScript SDK decides it.
"""

from __future__ import annotations

import sys

__all__ = ["fnv1a32", "hash", "in_namespace"]

FNV_OFFSET_BASIS = 0x811C9DC5
FNV_PRIME = 0x01000193
_MASK32 = 0xFFFFFFFF

# Native byte order, so that a memoryview cast to unsigned 16-bit ints reads code units directly.
_UTF16_NATIVE = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"


def fnv1a32_extend(state: int, s: str) -> int:
    """Continue an FNV-1a 32-bit hash from ``state`` over the UTF-16 code units of ``s``.

    ``fnv1a32_extend(fnv1a32(a), b) == fnv1a32(a + b)``, which lets callers precompute the state
    of a fixed prefix (an experiment's seed) once.
    """
    if s.isascii():
        # Bytes iterate as ints, and for ASCII each byte is one UTF-16 code unit.
        units = s.encode("ascii")
    else:
        # surrogatepass keeps lone surrogates as the single code unit JavaScript would see.
        units = memoryview(s.encode(_UTF16_NATIVE, "surrogatepass")).cast("H")
    h = state
    for unit in units:
        h = ((h ^ unit) * FNV_PRIME) & _MASK32
    return h


def fnv1a32(s: str) -> int:
    """FNV-1a 32-bit hash of ``s`` over its UTF-16 code units (see the module docstring)."""
    return fnv1a32_extend(FNV_OFFSET_BASIS, s)


def hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's bucketing hash of ``value`` under ``seed``: a float in [0, 1).

    Version 2 hashes twice (the decimal string of the first hash) to spread sequential seeds and
    values; it has 10,000 buckets. Version 1 is the legacy ``value + seed`` hash with 1,000
    buckets. Any other version gives ``None``.
    """
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def in_namespace(hash_value_id: str, namespace: tuple[str, float, float]) -> bool:
    """Whether a unit falls in the half-open slice [start, end) of a namespace.

    Namespaces let mutually exclusive experiments share traffic: each takes a disjoint slice of
    the same namespace, and a unit lands in at most one slice.
    """
    name, start, end = namespace
    n = (fnv1a32(hash_value_id + "__" + name) % 1000) / 1000
    return start <= n < end
