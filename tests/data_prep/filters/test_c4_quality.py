"""C4 cleaning: which lines survive, and which pages are dropped whole."""

import pytest

from data_prep.filters.c4 import Cleaned, c4_quality

# Five lines of one sentence each: a page that passes every rule unchanged.
GOOD_LINES = [f"This is sentence number {i} of the page." for i in range(5)]
GOOD_PAGE = "\n".join(GOOD_LINES)


def with_line(line: str) -> str:
    return "\n".join([*GOOD_LINES[:2], line, *GOOD_LINES[2:]])


def test_a_clean_page_is_kept_unchanged():
    assert c4_quality(GOOD_PAGE) == Cleaned(GOOD_PAGE, None)


@pytest.mark.parametrize(
    "line, kept",
    [
        ("It ends with a period.", True),
        ("Does it end with a question?", True),
        ("It ends with an exclamation!", True),
        ('He said "it ends with a quote"', True),
        ("It ends with 'a single quote'", True),
        ("It has no terminal punctuation", False),
        ("It trails off like this...", False),
        ("It ends with a colon:", False),
        # surrounding whitespace is stripped before the check
        ("   It ends with a period and spaces.   ", True),
    ],
)
def test_only_lines_ending_in_terminal_punctuation_are_kept(line, kept):
    text, reason = c4_quality(with_line(line))
    assert reason is None
    assert (line.strip() in text.split("\n")) is kept


@pytest.mark.parametrize("line, kept", [("Three words here.", True), ("Two words.", False)])
def test_a_kept_line_has_at_least_three_words(line, kept):
    assert (line in c4_quality(with_line(line)).text) is kept


@pytest.mark.parametrize("length, kept", [(1000, True), (1001, False)])
def test_lines_with_a_word_over_1000_characters_are_dropped(length, kept):
    line = f"See this {'x' * length} word."
    assert (line in c4_quality(with_line(line)).text) is kept


@pytest.mark.parametrize(
    "line",
    [
        "Please enable JavaScript to view this page.",
        "This website uses cookies to improve your experience.",
        "We care about the use of cookies on this site.",
        "Read our Privacy Policy before you continue.",
        "By using this site you accept the Terms of Use.",
        "See our cookie policy for the details.",
    ],
)
def test_javascript_and_policy_boilerplate_lines_are_dropped(line):
    text, reason = c4_quality(with_line(line))
    assert reason is None
    assert text == GOOD_PAGE


@pytest.mark.parametrize(
    "marked, cleaned",
    [
        ("Paris is the capital of France.[1]", "Paris is the capital of France."),
        ("Paris is the capital[12] of France.", "Paris is the capital of France."),
        ("Paris is the capital of France.[edit]", "Paris is the capital of France."),
        ("Paris is the capital of France.[citation needed]", "Paris is the capital of France."),
        ("Paris is the capital of France.[]", "Paris is the capital of France."),
    ],
)
def test_citation_markers_are_stripped(marked, cleaned):
    text = c4_quality(with_line(marked)).text
    assert cleaned in text.split("\n")
    assert "[" not in text


def test_a_citation_marker_does_not_hide_a_missing_end_mark():
    assert "Paris is the capital" not in c4_quality(with_line("Paris is the capital [1]")).text


@pytest.mark.parametrize(
    "line, reason",
    [
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "c4:lorem_ipsum"),
        ("The function body is { return x; } in the example.", "c4:curly_bracket"),
    ],
)
def test_a_kept_line_with_lorem_ipsum_or_a_curly_bracket_drops_the_page(line, reason):
    assert c4_quality(with_line(line)) == Cleaned(None, reason)


@pytest.mark.parametrize("line", ["function f() { return 1 }", "lorem ipsum", "Enable javascript {here}."])
def test_lines_dropped_earlier_cannot_drop_the_page(line):
    assert c4_quality(with_line(line)) == Cleaned(GOOD_PAGE, None)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("\n".join(GOOD_LINES), None),
        ("\n".join(GOOD_LINES[:4]), "c4:too_few_sentences"),
        # sentences are counted inside a line too
        ("One is here. Two is here. Three is here. Four is here. Five is here.", None),
        ("One is here. Two is here. Three is here. Four is here.", "c4:too_few_sentences"),
        # a period before a lowercase word does not end a sentence
        ("One is e.g. here. Two is here. Three is here. Four is here.", "c4:too_few_sentences"),
    ],
)
def test_a_page_needs_at_least_five_sentences_in_its_kept_lines(text, reason):
    assert c4_quality(text).reason == reason


@pytest.mark.parametrize("tail, reason", [(" Five is", None), ("", "c4:too_few_sentences")])
def test_an_unterminated_tail_is_a_sentence_when_lines_need_no_punctuation(tail, reason):
    # FineWeb keeps lines without terminal punctuation; punkt counts their last piece as a sentence.
    text = "One is here. Two is here. Three is here. Four is here." + tail
    assert c4_quality(text, require_terminal_punctuation=False).reason == reason


def test_none_turns_threshold_rules_off():
    assert c4_quality("Short.", min_sentences=None, min_words_per_line=None) == Cleaned("Short.", None)
    long_word = f"A {'x' * 2000} word."
    assert c4_quality(long_word, min_sentences=None, max_word_length=None).text == long_word


@pytest.mark.parametrize("min_sentences", [None, 0])
def test_a_page_with_no_line_left_is_dropped_even_without_a_sentence_minimum(min_sentences):
    assert c4_quality("No end mark\nTwo words.", min_sentences=min_sentences) == Cleaned(None, "c4:no_lines")


@pytest.mark.parametrize(
    "flag, line",
    [
        ("remove_citations", "Paris[1] is the capital of France."),
        ("require_terminal_punctuation", "It has no terminal punctuation"),
        ("drop_javascript_lines", "Please enable JavaScript to view this page."),
        ("drop_policy_lines", "This website uses cookies to improve your experience."),
        ("drop_lorem_ipsum", "Lorem ipsum dolor sit amet, consectetur adipiscing elit."),
        ("drop_curly_bracket", "The function body is { return x; } in the example."),
    ],
)
def test_each_rule_can_be_switched_off(flag, line):
    assert line in c4_quality(with_line(line), **{flag: False}).text.split("\n")


def test_a_page_with_a_word_of_the_bad_words_list_is_dropped(tmp_path):
    bad_words = tmp_path / "en"
    bad_words.write_text("badword\ntwo words\n\n", encoding="utf-8")
    def verdict(line: str) -> Cleaned:
        return c4_quality(with_line(line), bad_words_path=bad_words)

    assert verdict("It has a Badword in it.") == Cleaned(None, "c4:bad_words")
    assert verdict("It has two words in it.").reason == "c4:bad_words"
    assert verdict("It has badwords in it.").reason is None  # only whole words count


def test_an_empty_bad_words_list_is_an_error(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no words"):
        c4_quality(GOOD_PAGE, bad_words_path=empty)


# Hand-written Chinese: three lines, five sentences ended by full-width marks, no spaces after them.
CHINESE = "Debian 是一个自由的操作系统，由全球志愿者开发。它包含数万个软件包。每个软件包都经过测试。\n这是第二行，对吗？很好！"


def test_chinese_sentences_end_at_full_width_marks_when_the_line_ends_are_terminal():
    """With `。？！` as line ends (the language table's, for zh) the lines stay and count 5 sentences;
    with the English ends every line goes."""
    assert c4_quality(CHINESE, terminal_punctuation=(".", "\u3002", "\uff1f", "\uff01")) == Cleaned(CHINESE, None)
    assert c4_quality(CHINESE) == Cleaned(None, "c4:too_few_sentences")
    assert c4_quality(CHINESE, terminal_punctuation=("\u3002", "\uff01"), min_sentences=6).reason == "c4:too_few_sentences"
