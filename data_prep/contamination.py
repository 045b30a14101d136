"""Benchmark contamination: word n-grams a document shares with evaluation sets.

As in the GPT-3 and Llama 2 contamination analyses (Brown et al. 2020, appendix C: 13-grams;
Touvron et al. 2023, appendix A.6), text is lowercased, punctuation is stripped and the
rest split on whitespace; a document overlaps a benchmark when one of its word n-grams
(n = 13 by default) is one of the benchmark's.

The benchmarks' n-grams are held as a sorted array of 64-bit hashes, each with a bit mask
of the benchmarks that have it (at most 64): 16 bytes per distinct n-gram, whatever the
corpus, and reported. A document's n-grams are hashed the same way and looked up by binary
search. Two different n-grams share a hash with probability 2^-64 per pair: for a million
benchmark n-grams and a trillion document n-grams, about one chance match in 20 runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Sequence

import numpy as np

from data_prep.dedup.hashing import mix64

NGRAM = 13  # GPT-3's n-gram length for contamination (Brown et al. 2020, appendix C)
MAX_BENCHMARKS = 64  # one bit each in an n-gram's mask
_PUNCTUATION = re.compile(r"[^\w\s]|_")  # replaced by a space: "well-known" is two words, as "well known"
_BASE = np.uint64(0x9E3779B97F4A7C15)  # the rolling hash's multiplier (odd: a bijection mod 2^64)


def normalized_words(text: str) -> list[str]:
    """`text` lowercased, punctuation stripped, split on whitespace."""
    return _PUNCTUATION.sub(" ", text.lower()).split()


def _word_hashes(words: Sequence[str]) -> np.ndarray:
    """A stable 64-bit hash per word (blake2b: Python's `hash` differs between processes)."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                        for w in words), np.uint64, len(words))


def ngram_hashes(words: Sequence[str], n: int) -> np.ndarray:
    """The hash of each n-gram of `words`, in order: len(words) - n + 1 of them (none when shorter)."""
    if len(words) < n:
        return np.zeros(0, np.uint64)
    hashes = _word_hashes(words)
    count = len(words) - n + 1
    rolled = np.zeros(count, np.uint64)
    with np.errstate(over="ignore"):
        for i in range(n):  # sum of h[j + i] * BASE^(n - 1 - i), wrapping: polynomial, so word order counts
            rolled = rolled * _BASE + hashes[i:i + count]
    return mix64(rolled)


@dataclasses.dataclass(frozen=True)
class NgramIndex:
    """Every n-gram of the benchmarks: sorted hashes, and per hash a bit mask of the benchmarks that have it."""

    n: int
    names: tuple[str, ...]  # benchmark i is bit i of a mask
    hashes: np.ndarray  # (ngrams,) uint64, sorted, distinct
    masks: np.ndarray  # (ngrams,) uint64
    counts: dict[str, dict[str, int]]  # per benchmark: items, ngrams (distinct), items shorter than n words

    @property
    def bytes(self) -> int:
        return self.hashes.nbytes + self.masks.nbytes

    def matches(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(start of each of `words`' n-grams found in a benchmark, its benchmark mask), in order."""
        hashes = ngram_hashes(words, self.n)
        if not len(hashes) or not len(self.hashes):
            return np.zeros(0, np.int64), np.zeros(0, np.uint64)
        where = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        found = np.flatnonzero(self.hashes[where] == hashes)
        return found, self.masks[where[found]]

    def benchmarks(self, masks: np.ndarray) -> dict[str, int]:
        """Matched n-grams per benchmark, given their masks."""
        bits = np.unpackbits(masks.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        per_bit = bits.sum(axis=0)
        return {name: int(per_bit[i]) for i, name in enumerate(self.names) if per_bit[i]}


def build_index(benchmarks: Iterable[tuple[str, Iterable[list[str]]]], n: int = NGRAM) -> NgramIndex:
    """The index of `benchmarks`: (name, each item's texts) pairs, at most MAX_BENCHMARKS of them."""
    names, parts, masks, counts = [], [], [], {}
    for bit, (name, items) in enumerate(benchmarks):
        if bit >= MAX_BENCHMARKS:
            raise ValueError(f"more than {MAX_BENCHMARKS} evaluation sets; merge some into one file")
        found, short, total = [np.zeros(0, np.uint64)], 0, 0
        for texts in items:
            total += 1
            words = [normalized_words(text) for text in texts]
            short += all(len(w) < n for w in words)
            found += [ngram_hashes(w, n) for w in words]
        distinct = np.unique(np.concatenate(found))
        names.append(name)
        parts.append(distinct)
        masks.append(np.full(len(distinct), np.uint64(1) << np.uint64(bit)))
        counts[name] = {"items": total, "ngrams": len(distinct), "items_shorter_than_n": short}
    hashes, mask = np.concatenate(parts or [np.zeros(0, np.uint64)]), np.concatenate(masks or [np.zeros(0, np.uint64)])
    order = np.argsort(hashes, kind="stable")
    hashes, mask = hashes[order], mask[order]
    starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]]) if len(hashes) else np.zeros(0, np.int64)
    merged = np.bitwise_or.reduceat(mask, starts) if len(hashes) else mask
    return NgramIndex(n, tuple(names), hashes[starts], merged, counts)
