"""Exact ground truth for the dedup tests: the shingle sets dedup estimates, and their Jaccard."""

from data_prep.dedup.normalize import normalize_words, shingles


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def shingle_set(text: str) -> set[str]:
    return set(shingles(normalize_words(text)))
