"""Exact ground truth for the dedup tests: the shingle sets dedup estimates, their Jaccard, and seeded edits."""

import random

from data_prep.dedup.normalize import normalize_words, shingles


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def shingle_set(text: str) -> set[str]:
    return set(shingles(normalize_words(text)))


def perturb(text: str, rate: float, vocabulary: list[str], rng: random.Random) -> str:
    """`text` with rate x words (at least one) random insertions, deletions and substitutions."""
    words = text.split()
    for _ in range(max(1, round(rate * len(words)))):
        op, at = rng.choice("ids"), rng.randrange(len(words))
        if op == "i":
            words.insert(at, rng.choice(vocabulary))
        elif op == "d" and len(words) > 1:
            del words[at]
        else:
            words[at] = rng.choice(vocabulary)
    return " ".join(words)
