"""FineWeb quality rules: each one alone, on documents on both sides of its limit."""

import pytest

from data_prep.filters.fineweb import fineweb_quality

ALL_OFF = {
    "min_punctuated_line_fraction": None,
    "max_short_line_fraction": None,
    "max_duplicate_line_char_fraction": None,
    "max_newlines_per_token": None,
}
SENTENCE = "A line that is long enough to count as a real line of prose."  # 61 chars
FRAGMENT = "A line that is long enough to count but ends without punctuation"


def only(rule: str, text: str, **overrides) -> str | None:
    """fineweb_quality with every rule off but `rule`, at its default."""
    return fineweb_quality(text, **{**{k: v for k, v in ALL_OFF.items() if k != rule}, **overrides})


@pytest.mark.parametrize(
    "n_punctuated, expected",
    [(13, None), (12, "fineweb_quality:too_few_punctuated_lines")],  # 0.12 itself drops
)
def test_more_than_12_percent_of_lines_must_end_in_punctuation(n_punctuated, expected):
    text = "\n".join([SENTENCE] * n_punctuated + [FRAGMENT] * (100 - n_punctuated))
    assert only("min_punctuated_line_fraction", text) == expected


@pytest.mark.parametrize("ending", [".", "'", '"', "!", "?"])
def test_each_stop_character_ends_a_punctuated_line(ending):
    assert only("min_punctuated_line_fraction", FRAGMENT + ending) is None
    assert only("min_punctuated_line_fraction", FRAGMENT + ending + " ") is not None  # not stripped


@pytest.mark.parametrize(
    "n_short, expected",
    [(66, None), (67, "fineweb_quality:too_many_short_lines")],  # 0.67 itself drops
)
def test_fewer_than_67_percent_of_lines_may_be_short(n_short, expected):
    text = "\n".join([f"Short line {i}." for i in range(n_short)] + [SENTENCE] * (100 - n_short))
    assert only("max_short_line_fraction", text) == expected


@pytest.mark.parametrize("length, is_short", [(30, True), (31, False)])
def test_a_short_line_has_at_most_30_characters(length, is_short):
    text = "\n".join(["x" * length] * 2 + [SENTENCE])  # short ones: 2 of 3 lines, or none
    assert only("max_short_line_fraction", text, max_short_line_fraction=0.6) == (
        "fineweb_quality:too_many_short_lines" if is_short else None
    )


@pytest.mark.parametrize(
    "other_chars, expected",
    # a repeated 10-character line over 1001 (1000) characters outside newlines
    [(981, None), (980, "fineweb_quality:too_many_duplicate_line_chars")],  # 0.01 itself drops
)
def test_repeated_lines_must_hold_under_1_percent_of_characters(other_chars, expected):
    text = "\n".join(["Repeat me.", "Repeat me.", "u" * other_chars])
    assert only("max_duplicate_line_char_fraction", text) == expected


def test_blank_lines_are_not_repeated_lines():
    text = "\n    \n".join(["First paragraph.", "Second paragraph.", "Third paragraph."])
    assert only("max_duplicate_line_char_fraction", text) is None


@pytest.mark.parametrize(
    "n_newlines, expected",
    [(3, None), (4, "fineweb_quality:too_many_newlines_per_token")],  # 3 / 10 = 0.3 kept
)
def test_at_most_3_newlines_per_10_tokens(n_newlines, expected):
    words = "one two three four five six seven eight nine ten".split()
    text = "\n".join([" ".join(words[: 10 - n_newlines])] + words[10 - n_newlines :])
    assert text.count("\n") == n_newlines
    assert only("max_newlines_per_token", text) == expected


def test_defaults_keep_prose_and_drop_a_navigation_menu():
    assert fineweb_quality("\n".join([SENTENCE, "Another full sentence that ends as it should."])) is None
    assert fineweb_quality("Home\nProducts\nAbout us\nContact") == "fineweb_quality:too_few_punctuated_lines"


@pytest.mark.parametrize("rule, text", [
    # 12 of 100 lines punctuated: 0.12 itself drops under FineWeb's rules, keeps under datatrove 0.10's
    ("min_punctuated_line_fraction", "\n".join([SENTENCE] * 12 + [FRAGMENT] * 88)),
    # 2 of 3 lines short is not 0.67 exactly, so count in thirds of 300 lines: 201 short >= 0.67
    ("max_short_line_fraction", "\n".join(["Short."] * 201 + [SENTENCE] * 99)),
])
def test_datatrove_rules_keep_a_value_equal_to_the_limit(rule, text):
    assert only(rule, text) is not None
    assert only(rule, text, rules="datatrove") is None


def test_datatrove_rules_skip_blank_lines():
    """Paragraphs apart by three blank lines: for FineWeb's rules the blank lines are short lines."""
    paragraphs = [f"Paragraph number {i} is long enough to count as a real line of prose." for i in range(10)]
    text = "\n\n\n\n".join(paragraphs)
    assert fineweb_quality(text) == "fineweb_quality:too_many_short_lines"
    assert fineweb_quality(text, rules="datatrove") is None
    assert fineweb_quality(" \n\n\t", rules="datatrove") == "fineweb_quality:no_text"


def test_an_unknown_rule_set_is_an_error():
    with pytest.raises(ValueError, match="rules must be one of"):
        fineweb_quality(SENTENCE, rules="fineweb-2")
