"""Exact duplicates: documents whose normalized text is identical.

Cheap and certain, so it runs before MinHash: it catches mirrored pages and
untranslated copies exactly, and the near-duplicate stage then compares fewer
documents. "Identical" is after `normalize`, so copies differing only in
whitespace, case or punctuation count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_prep.dedup.hashing import hash128
from data_prep.document import Removed

REMOVED = Removed("dedup", "exact_duplicate")


def content_keys(word_lists: Sequence[list[str]]) -> np.ndarray:
    """[n, 2] uint64: a 128-bit blake2b hash of each document's normalized words."""
    keys = np.empty((len(word_lists), 2), np.uint64)
    for row, words in enumerate(word_lists):
        keys[row] = hash128(" ".join(words))
    return keys
