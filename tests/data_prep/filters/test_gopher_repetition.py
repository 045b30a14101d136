"""Gopher repetition rules: each one alone, on documents just inside and just outside its limit."""

import pytest

from data_prep.filters.gopher import (
    DUPLICATE_NGRAM_CHAR_FRACTIONS,
    TOP_NGRAM_CHAR_FRACTIONS,
    gopher_repetition,
)

ALL_OFF = {
    "max_duplicate_paragraph_fraction": None,
    "max_duplicate_paragraph_char_fraction": None,
    "max_duplicate_line_fraction": None,
    "max_duplicate_line_char_fraction": None,
    "top_ngram_char_fractions": None,
    "duplicate_ngram_char_fractions": None,
}


def only(text: str, **rule) -> str | None:
    return gopher_repetition(text, **{**ALL_OFF, **rule})


def parts(n_unique: int, n_repeats: int) -> list[str]:
    """`n_unique` distinct parts, then `n_repeats` copies of the first one."""
    unique = [f"part number {i} says something else" for i in range(n_unique)]
    return unique + unique[:1] * n_repeats


def padded(body: str, length: int) -> str:
    """`body` and one unique filler word, `length` characters in all."""
    return body + " " + "z" * (length - len(body) - 1)


@pytest.mark.parametrize(
    "rule, separator, kind",
    [
        ("max_duplicate_paragraph_fraction", "\n\n", "paragraphs"),
        ("max_duplicate_line_fraction", "\n", "lines"),
    ],
)
def test_at_most_30_percent_of_paragraphs_or_lines_may_repeat(rule, separator, kind):
    assert only(separator.join(parts(7, 3)), **{rule: 0.3}) is None
    assert only(separator.join(parts(6, 4)), **{rule: 0.3}) == f"gopher_repetition:duplicate_{kind}"


@pytest.mark.parametrize(
    "rule, separator, kind",
    [
        ("max_duplicate_paragraph_char_fraction", "\n\n", "paragraph_chars"),
        ("max_duplicate_line_char_fraction", "\n", "line_chars"),
    ],
)
def test_at_most_20_percent_of_characters_may_be_in_repeated_paragraphs_or_lines(rule, separator, kind):
    repeated = "r" * 20  # its second copy is 20 characters: 20 / 100 is kept, 20 / 99 is not
    unique_length = 100 - 2 * len(repeated) - 2 * len(separator)
    def text(unique_chars: int) -> str:
        return separator.join([repeated, repeated, "u" * unique_chars])

    assert only(text(unique_length), **{rule: 0.2}) is None
    assert only(text(unique_length - 1), **{rule: 0.2}) == f"gopher_repetition:duplicate_{kind}"


def test_blank_lines_at_the_edges_are_not_duplicate_lines():
    # datatrove would count the two empty edge "lines" as one duplicate of three lines
    assert only("\nA single line of text.\n", max_duplicate_line_fraction=0.3) is None


@pytest.mark.parametrize(
    "n, limit, copies",
    # copies make the repeated n-gram's characters times copies a whole share of the text
    [(2, 0.20, 4), (3, 0.18, 9), (4, 0.16, 4)],
)
def test_the_most_common_ngram_may_cover_only_its_published_share(n, limit, copies):
    assert (n, limit) in TOP_NGRAM_CHAR_FRACTIONS
    phrase = " ".join(["ab", "cd", "ef", "gh"][:n])
    body = " ".join(f"{phrase} x{i:02d}" for i in range(copies))
    length = round(len(phrase) * copies / limit)
    assert only(padded(body, length), top_ngram_char_fractions=[(n, limit)]) is None
    assert only(padded(body, length - 1), top_ngram_char_fractions=[(n, limit)]) == (
        f"gopher_repetition:top_{n}gram_chars"
    )


@pytest.mark.parametrize(
    "n, limit, word_length",
    # word_length makes the repeat's n * word_length characters a whole share of the text
    [(5, 0.15, 3), (6, 0.14, 7), (7, 0.13, 13), (8, 0.12, 3), (9, 0.11, 11), (10, 0.10, 2)],
)
def test_repeated_ngrams_may_cover_only_their_published_share(n, limit, word_length):
    assert (n, limit) in DUPLICATE_NGRAM_CHAR_FRACTIONS
    phrase = " ".join(chr(ord("a") + i) * word_length for i in range(n))
    body = f"{phrase} x01 {phrase}"
    length = round(n * word_length / limit)  # spaces inside the repeat do not count
    assert only(padded(body, length), duplicate_ngram_char_fractions=[(n, limit)]) is None
    assert only(padded(body, length - 1), duplicate_ngram_char_fractions=[(n, limit)]) == (
        f"gopher_repetition:duplicate_{n}gram_chars"
    )


def test_the_scan_jumps_past_each_repeat_as_datatrove_does():
    # Three copies of "a b c d e": the scan counts copies two and three (5 characters
    # each, spaces excluded) and jumps past each, so the overlapping 5-grams inside
    # them ("b c d e a", ...) are not counted again: 10 characters, not 30.
    text = padded(" ".join(["a b c d e"] * 3), 100)
    assert only(text, duplicate_ngram_char_fractions=[(5, 0.1)]) is None
    assert only(text, duplicate_ngram_char_fractions=[(5, 0.09)]) == "gopher_repetition:duplicate_5gram_chars"


def test_defaults_keep_varied_prose_and_drop_a_repeated_banner():
    prose = (
        "Rivers carry sediment from the mountains to the sea. Along the way, they carve "
        "valleys, feed wetlands and shape the land that farmers depend on. Engineers who "
        "build dams must account for the silt that will settle behind the wall."
    )
    assert gopher_repetition(prose) is None
    banner = "\n".join(["Buy now and save!"] * 5 + [prose])
    assert gopher_repetition(banner) == "gopher_repetition:duplicate_lines"
