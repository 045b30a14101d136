"""The 64-bit hashes the dedup stages share: strings to keys, and a mixer for numpy arrays.

blake2b (hashlib, in C) rather than Python's `hash`, which is salted per process:
keys written by one worker must equal keys written by another, run after run.
xxhash would be faster but is not installed; string hashing is a small part of the
cost next to MinHash.
"""

from __future__ import annotations

import hashlib

import numpy as np

# splitmix64's finalizer (Steele et al., "Fast splittable pseudorandom number generators", 2014).
_MIX = (np.uint64(30), np.uint64(0xBF58476D1CE4E5B9), np.uint64(27), np.uint64(0x94D049BB133111EB), np.uint64(31))


def hash64(value: str) -> int:
    """A stable 64-bit hash of a string."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "little")


def hash128(value: str) -> tuple[int, int]:
    """A stable 128-bit hash of a string, as two 64-bit halves: collisions are not a concern at any corpus size."""
    digest = hashlib.blake2b(value.encode(), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


def mix64(x: np.ndarray) -> np.ndarray:
    """A bijection of uint64 that scatters nearby inputs over the whole range (wrapping arithmetic)."""
    s1, m1, s2, m2, s3 = _MIX
    x = (x ^ (x >> s1)) * m1
    x = (x ^ (x >> s2)) * m2
    return x ^ (x >> s3)
