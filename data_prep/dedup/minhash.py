"""MinHash signatures and LSH banding: the pieces of near-duplicate detection.

Two documents' MinHash signatures agree in each position with probability equal to
the Jaccard similarity of their shingle sets. Cutting a signature into `bands` bands
of `rows` values and calling two documents candidates when any band is equal makes
the chance of being a candidate 1 - (1 - J^rows)^bands: an S-curve that rises at
about (1/bands)^(1/rows). FineWeb's 14 bands x 8 rows (112 permutations) put that
at J ~ 0.72 (https://arxiv.org/abs/2406.17557, section 3.3).

All functions here are pure and work on one shard of documents at a time, so a
local process pool or a Beam runner can call them alike.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from datasketch import MinHash

from data_prep.dedup.hashing import mix64
from data_prep.dedup.normalize import NGRAM, shingles
from data_prep.document import Removed

REMOVED = Removed("dedup", "near_duplicate")
BANDS = 14  # FineWeb
ROWS = 8  # FineWeb; num_perm = BANDS * ROWS = 112
SEED = 1  # seeds the permutations; signatures compare only under the same seed
VERIFY_CHUNK = 8192  # edges verified at a time: bounds the signature rows gathered


def signatures(word_lists: Sequence[list[str]], num_perm: int = BANDS * ROWS, ngram: int = NGRAM,
               seed: int = SEED) -> np.ndarray:
    """[n, num_perm] uint32 MinHash signatures of normalized documents (from `normalize_words`).

    `MinHash.bulk` hashes a document's shingles in one numpy batch, about 10x faster
    than updating shingle by shingle; crc32 (in C) is the fastest 32-bit hash at hand,
    and datasketch's affine32 scheme scrambles it (murmur3's finalizer) before permuting.
    """
    batches = [[s.encode() for s in shingles(words, ngram)] for words in word_lists]
    minhashes = MinHash.bulk(batches, num_perm=num_perm, seed=seed, hashfunc=zlib.crc32, scheme="affine32")
    out = np.empty((len(word_lists), num_perm), np.uint32)
    for row, m in enumerate(minhashes):
        out[row] = m.hashvalues
    return out


def band_keys(sigs: np.ndarray, bands: int = BANDS, rows: int = ROWS) -> np.ndarray:
    """[n, bands] uint64: one hash per band of `rows` consecutive signature values."""
    if sigs.shape[1] != bands * rows:
        raise ValueError(f"signatures of {sigs.shape[1]} values cannot be cut into {bands} bands x {rows} rows")
    values = sigs.reshape(len(sigs), bands, rows).astype(np.uint64)
    keys = np.zeros((len(sigs), bands), np.uint64)
    for row in range(rows):
        keys = mix64(keys + values[:, :, row])
    return keys


def lsh_threshold(bands: int = BANDS, rows: int = ROWS) -> float:
    """The Jaccard similarity at which the candidate S-curve is steepest, about (1/bands)^(1/rows)."""
    return (1 / bands) ** (1 / rows)


def estimated_jaccard(sigs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """[m] float: the fraction of equal signature values for each edge [m, 2] of row indices.

    `sigs` may be a memory map: only the rows of `VERIFY_CHUNK` edges are read at a time.
    """
    out = np.empty(len(edges))
    for start in range(0, len(edges), VERIFY_CHUNK):
        a, b = edges[start:start + VERIFY_CHUNK].T
        out[start:start + VERIFY_CHUNK] = (sigs[a] == sigs[b]).mean(axis=1)
    return out
