"""Deterministic, order-independent choices of documents by a seeded hash of their id.

The same document lands in the same split, and the same documents make the
tokenizer sample, on every run and whatever order the inputs are read in.
"""

from __future__ import annotations

import hashlib
import heapq

TRAIN = "train"
VALIDATION = "validation"


def unit_hash(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from `key` and `seed`, stable across runs and machines."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def split_of(doc_id: str, validation_fraction: float, seed: int) -> str:
    """`validation` for about `validation_fraction` of document ids, `train` for the rest."""
    return VALIDATION if unit_hash(doc_id, seed) < validation_fraction else TRAIN


class HashSample:
    """A uniform sample of texts up to `max_bytes` (UTF-8), kept in memory.

    Keeps the texts whose ids have the smallest seeded hashes (bottom-k sampling): the
    longest run, in hash order, that fits the budget. Once a hash has been evicted,
    no larger one gets in, so the sample does not depend on the input order.
    """

    def __init__(self, max_bytes: int, seed: int):
        self.max_bytes = max_bytes
        self.seed = seed
        self.num_bytes = 0
        self._cutoff = 1.0  # every hash at or above it is out of the sample for good
        self._heap: list[tuple[float, str, str]] = []  # (-hash, id, text): largest hash on top

    def add(self, doc_id: str, text: str) -> None:
        key = unit_hash(doc_id, self.seed)
        if key >= self._cutoff:
            return
        heapq.heappush(self._heap, (-key, doc_id, text))
        self.num_bytes += len(text.encode("utf-8"))
        while self.num_bytes > self.max_bytes:
            negative_key, _, dropped = heapq.heappop(self._heap)
            self._cutoff = -negative_key
            self.num_bytes -= len(dropped.encode("utf-8"))

    def merge(self, other: HashSample) -> None:
        """Adds `other`'s sample (of other documents, same budget and seed) to this one.

        The result is the sample of both inputs together: every hash at or above either
        cutoff is out of the joint sample, and what is left is cut to the budget. This
        lets partial samples be built in parallel (the Beam runner's combine).
        """
        if (other.max_bytes, other.seed) != (self.max_bytes, self.seed):
            raise ValueError("only samples with the same budget and seed can be merged")
        self._cutoff = min(self._cutoff, other._cutoff)
        while self._heap and -self._heap[0][0] >= self._cutoff:
            _, _, dropped = heapq.heappop(self._heap)
            self.num_bytes -= len(dropped.encode("utf-8"))
        for _, doc_id, text in other._heap:
            self.add(doc_id, text)

    def texts(self) -> list[str]:
        """The sampled texts, in hash order (independent of the order they were added)."""
        return [text for _, _, text in sorted(self._heap, reverse=True)]
