"""FineWeb's text normalization for deduplication, and word n-gram shingles.

Two documents that differ only in case, accents, numbers, punctuation or spacing
are the same document for deduplication; normalizing first makes both the exact
hash and the MinHash shingles blind to those differences
(FineWeb, https://arxiv.org/abs/2406.17557, section 3.3; datatrove's `simplify_text`).
"""

from __future__ import annotations

import re
import unicodedata

NGRAM = 5  # FineWeb shingles documents into word 5-grams
# After NFD, accents are combining marks; like punctuation, symbols and "_", they are
# neither word characters nor whitespace, so one pattern deletes all of them.
_NOT_WORD_OR_SPACE = re.compile(r"[^\w\s]|_")
_DIGIT = re.compile(r"\d")
# The same rules for ASCII text as one bytes.translate, about 30x faster than the regexes.
_ASCII_TABLE = bytes.maketrans(
    bytes(range(ord("A"), ord("Z") + 1)) + b"0123456789",
    bytes(range(ord("a"), ord("z") + 1)) + b"0" * 10)
_ASCII_DELETE = bytes(c for c in range(128) if _NOT_WORD_OR_SPACE.fullmatch(chr(c)))


def normalize_words(text: str) -> list[str]:
    """The words of `text`, lowercased, accents and punctuation deleted, each digit 0.

    Punctuation is deleted rather than replaced by a space, as FineWeb does, so
    "don't" and "dont" are one word. Splitting on whitespace collapses runs of it.
    """
    if text.isascii():
        return text.encode().translate(_ASCII_TABLE, _ASCII_DELETE).decode().split()
    text = unicodedata.normalize("NFD", text.lower())
    return _DIGIT.sub("0", _NOT_WORD_OR_SPACE.sub("", text)).split()


def normalize(text: str) -> str:
    """`text` as one normalized string: its normalized words joined by single spaces."""
    return " ".join(normalize_words(text))


def shingles(words: list[str], n: int = NGRAM) -> list[str]:
    """The word n-grams of `words`, each as one space-joined string, in order.

    A document of fewer than n words (empty included) is one shingle of all its
    words, so that short documents still have a set to compare.
    """
    if len(words) <= n:
        return [" ".join(words)]
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
