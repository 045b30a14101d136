"""Gopher quality rules: each one alone, on documents just inside and just outside its limit."""

import inspect

import pytest

from data_prep.filters.gopher import gopher_quality

THRESHOLDS = [
    name
    for name, parameter in inspect.signature(gopher_quality).parameters.items()
    if parameter.kind is parameter.KEYWORD_ONLY and name not in ("stop_words", "rules")
]


def only(rule: str, text: str, **overrides) -> str | None:
    """Run gopher_quality with every threshold off except `rule` (at its default)."""
    return gopher_quality(text, **{name: None for name in THRESHOLDS if name != rule}, **overrides)


def words(n: int, word: str = "house") -> str:
    return " ".join([word] * n)


def after_100_words(symbol: str, copies: int) -> str:
    return words(100) + f" {symbol}" * copies


def lines(n_marked: int, n_total: int, mark: str, at_end: bool = False) -> str:
    """`n_total` lines of six words, the first `n_marked` of them marked at start or end."""
    body = [words(6)] * n_total
    marked = [f"{line} {mark}" if at_end else f"{mark} {line}" for line in body[:n_marked]]
    return "\n".join(marked + body[n_marked:])


@pytest.mark.parametrize(
    "rule, kept, dropped, reason",
    [
        ("min_words", words(50), words(49), "too_few_words"),
        ("max_words", words(100_000), words(100_001), "too_many_words"),
        # mean length exactly 3, then 149 / 50 characters
        ("min_mean_word_length", words(50, "the"), words(49, "the") + " an", "mean_word_length_too_short"),
        # 14 words of 11 letters and 2 of 3 bring the mean of 50 words to exactly 10
        (
            "max_mean_word_length",
            " ".join(["the"] * 2 + ["elevenchars"] * 14 + ["tencharsxx"] * 34),
            " ".join(["the"] * 2 + ["elevenchars"] * 15 + ["tencharsxx"] * 33),
            "mean_word_length_too_long",
        ),
        # every '#' is a token: 11 / 111 <= 0.1 < 12 / 112
        *[
            ("max_symbols_per_token", after_100_words(symbol, 11), after_100_words(symbol, 12), why)
            for symbol, why in [
                ("#", "too_many_hashes"),
                ("...", "too_many_ellipses"),
                ("\u2026", "too_many_ellipses"),
            ]
        ],
        *[
            ("max_bullet_line_fraction", lines(18, 20, bullet), lines(19, 20, bullet), "too_many_bullet_lines")
            for bullet in ["\u2022", "-"]
        ],
        (
            "max_ellipsis_line_fraction",
            lines(3, 10, "...", at_end=True),
            lines(4, 10, "...", at_end=True),
            "too_many_ellipsis_lines",
        ),
        # numbers have no letter: 80 / 100 >= 0.8 > 79 / 100
        (
            "min_tokens_with_letter_fraction",
            words(80) + " 2024" * 20,
            words(79) + " 2024" * 21,
            "too_few_tokens_with_letter",
        ),
        ("min_stop_words", words(48) + " the the", words(49) + " the", "too_few_stop_words"),
        ("min_stop_words", words(48) + " of and", words(49) + " The", "too_few_stop_words"),
    ],
)
def test_each_rule_keeps_up_to_its_published_limit_and_drops_past_it(rule, kept, dropped, reason):
    assert only(rule, kept) is None
    assert only(rule, dropped) == f"gopher_quality:{reason}"


@pytest.mark.parametrize("text", [words(10), "#" * 20, "\u2022 a\n\u2022 b", "1 2 3 4 5", ""])
def test_none_turns_every_rule_off(text):
    assert gopher_quality(text, **dict.fromkeys(THRESHOLDS)) is None


def test_defaults_drop_a_short_text_and_keep_ordinary_prose():
    prose = (
        "The committee met on Tuesday to discuss the budget for the coming year. Members "
        "agreed that the library should have longer opening hours, and that funds for "
        "the new reading room would come from the reserve. A final vote is planned for "
        "the next meeting, after the treasurer has presented a revised estimate of the "
        "costs together with the income expected from the autumn fair."
    )
    assert gopher_quality(prose) is None
    assert gopher_quality("Home | About | Contact") == "gopher_quality:too_few_words"


def test_custom_stop_words_replace_the_english_ones():
    german = words(48) + " und der"
    assert only("min_stop_words", german) == "gopher_quality:too_few_stop_words"
    assert only("min_stop_words", german, stop_words={"und", "der"}) is None


def test_datatrove_rules_count_distinct_stop_words():
    """FineWeb counted occurrences ("the the" is two); datatrove 0.10 counts distinct words."""
    text = words(48) + " the the"
    assert only("min_stop_words", text) is None
    assert only("min_stop_words", text, rules="datatrove") == "gopher_quality:too_few_stop_words"
    assert only("min_stop_words", words(48) + " the of", rules="datatrove") is None
