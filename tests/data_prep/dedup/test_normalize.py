"""FineWeb's normalization makes trivial differences invisible; shingles cover every document."""

import pytest

from data_prep.dedup.normalize import normalize, normalize_words, shingles


@pytest.mark.parametrize("text, expected", [
    ("Hello   World", "hello world"),  # case, and runs of whitespace
    ("It's 2024, isn't it?", "its 0000 isnt it"),  # punctuation deleted, each digit 0
    ("Ça coûte 12,50 € — naïve CAFÉ", "ca coute 0000 naive cafe"),  # accents, symbols
    ("snake_case\tand\nnew-lines", "snakecase and newlines"),
    ("٣ apples", "0 apples"),  # digits of any script
    ("", ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_ascii_fast_path_agrees_with_the_unicode_rules():
    # Every ASCII character, once alone between letters; a non-ASCII letter forces the slow path.
    for code in range(128):
        text = f"A{chr(code)}b 7"
        assert normalize_words(text) == normalize_words(text + " é")[:-1], repr(chr(code))


def test_shingles_are_word_ngrams():
    assert shingles("a b c d e f".split(), n=5) == ["a b c d e", "b c d e f"]


@pytest.mark.parametrize("words", [[], ["one"], "a b c d".split(), "a b c d e".split()])
def test_document_of_at_most_n_words_is_one_shingle(words):
    assert shingles(words, n=5) == [" ".join(words)]
