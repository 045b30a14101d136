"""Word splitting shared by the filters: NLTK-like tokens, scripts without spaces split by ICU."""

import pytest

from data_prep.filters.text_stats import duplicate_counts, fraction, split_words, text_stats


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Hello, world.", ["Hello", ",", "world", "."]),
        ("Python 3.11.2 costs 1,000 at 10:30!", ["Python", "3.11.2", "costs", "1,000", "at", "10:30", "!"]),
        ("a well-known and/or x=y+1 (os.path)", ["a", "well-known", "and/or", "x=y+1", "(", "os.path", ")"]),
        ("John's #tag... -- end", ["John", "'s", "#", "tag", "...", "--", "end"]),
        ("It\u2019s O\u2019Neil\u2019s", ["It", "\u2019", "s", "O", "\u2019", "Neil", "\u2019", "s"]),  # NLTK's split
        ("note: done, ok", ["note", ":", "done", ",", "ok"]),
        ("red,green key:value 1,5 2:30", ["red", ",", "green", "key", ":", "value", "1,5", "2:30"]),
        ("我爱北京。", ["我", "爱", "北京", "。"]),  # ICU's dictionary words
        ("日本語のテキスト", ["日本語", "の", "テキスト"]),
        ("ภาษาไทยไม่มีช่องว่าง", ["ภาษา", "ไทย", "ไม่มี", "ช่อง", "ว่าง"]),
        ("كلمة، كلمة؟", ["كلمة", "،", "كلمة", "؟"]),  # Arabic marks split off, as spaCy does
        ("Großes Café naïve", ["Großes", "Café", "naïve"]),
    ],
)
def test_tokens_split_punctuation_like_nltk_and_spaceless_scripts_into_words(text, tokens):
    assert text_stats(text).tokens == tokens


def test_words_are_the_tokens_with_a_letter_or_digit():
    stats = text_stats("It cost $5 (or 5.00) - cheap ... 漢字 !")
    assert stats.words == ["It", "cost", "5", "or", "5.00", "cheap", "漢字"]
    assert stats.n_words_with_letter == 5
    assert stats.mean_word_length == pytest.approx(20 / 7)


def test_the_same_string_is_tokenized_once():
    text = "Some text to share between filters."
    assert text_stats(text) is text_stats(text)
    assert text_stats(text).tokens is text_stats(text).tokens


def test_a_text_without_words_has_mean_length_zero():
    assert text_stats("... !").mean_word_length == 0.0


def test_duplicates_count_copies_after_the_first_and_their_characters():
    assert duplicate_counts(["ab", "c", "ab", "ab", "c", "d"]) == (3, 5)
    assert duplicate_counts([]) == (0, 0)


def test_a_fraction_of_nothing_is_zero():
    assert fraction(3, 0) == 0.0
    assert fraction(1, 4) == 0.25


def test_split_words_splits_on_whitespace_and_spaceless_runs_into_words():
    """C4's words per line: whitespace pieces as TFDS counts them, a Chinese run as its words."""
    assert split_words("a  b-c d.") == ["a", "b-c", "d."]
    assert split_words("Debian 是自由的操作系统。") == ["Debian", "是", "自由", "的", "操作", "系统", "。"]
