"""Gopher's document quality and repetition rules (Rae et al. 2021, Appendix A, Table A1).

Both return None to keep a document, or a reason `"gopher_<rule set>:<rule>"` naming the
rule it failed. Where the paper leaves a detail open, the decision follows datatrove's
GopherQualityFilter / GopherRepetitionFilter, which produced FineWeb; deliberate
differences are noted where they occur.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from itertools import accumulate, compress, count
from operator import itemgetter, ne

from data_prep.filters.text_stats import check_rules, duplicate_counts, fraction, text_stats

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("\u2022", "-")  # the two bullet marks datatrove counts
ELLIPSES = ("...", "\u2026")

# Table A1: n -> the largest fraction of characters allowed in the most common n-gram ...
TOP_NGRAM_CHAR_FRACTIONS = ((2, 0.20), (3, 0.18), (4, 0.16))
# ... and in all repeated copies of n-grams.
DUPLICATE_NGRAM_CHAR_FRACTIONS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))

_PARAGRAPH_BREAK_RE = re.compile(r"\n{2,}")
_LINE_BREAK_RE = re.compile(r"\n+")


def _above(value: float, limit: float | None) -> bool:
    return limit is not None and value > limit


def _below(value: float, limit: float | None) -> bool:
    return limit is not None and value < limit


def gopher_quality(
    text: str,
    *,
    min_words: int | None = 50,
    max_words: int | None = 100_000,
    min_mean_word_length: float | None = 3,
    max_mean_word_length: float | None = 10,
    max_symbols_per_token: float | None = 0.1,
    max_bullet_line_fraction: float | None = 0.9,
    max_ellipsis_line_fraction: float | None = 0.3,
    min_tokens_with_letter_fraction: float | None = 0.8,
    min_stop_words: int | None = 2,
    stop_words: Collection[str] = STOP_WORDS,
    rules: str = "fineweb",
) -> str | None:
    """Drop text that does not look like prose (Rae et al. 2021, Appendix A.1.1).

    Words are tokens with a letter or digit (see text_stats); "per token" counts
    punctuation too, as datatrove does. Each limit is inclusive (a value equal to it
    keeps the document) and None turns its rule off.

    Args:
        min_words, max_words: allowed number of words.
        min_mean_word_length, max_mean_word_length: allowed mean characters per word.
        max_symbols_per_token: most `#`, and separately most ellipses (`...` or `…`),
            per token: the paper's "symbol-to-word ratio".
        max_bullet_line_fraction: most lines starting with a bullet (`•` or `-`).
        max_ellipsis_line_fraction: most lines ending with an ellipsis.
        min_tokens_with_letter_fraction: fewest tokens with a letter, per token: the
            paper's "80% of words with an alphabetic character" as datatrove reads it.
            Punctuation tokens count against it, so code-heavy pages (most of the
            Python library reference) fall below 0.8.
        min_stop_words: fewest `stop_words` (case-sensitive): occurrences, as the datatrove
            release that built FineWeb counted them (`rules="fineweb"`), or distinct ones, as
            datatrove 0.10 does (`rules="datatrove"`).
    """
    check_rules(rules)
    stats = text_stats(text)
    n_words, n_tokens = len(stats.words), len(stats.tokens)
    if _below(n_words, min_words):
        return "gopher_quality:too_few_words"
    if _above(n_words, max_words):
        return "gopher_quality:too_many_words"
    if _below(stats.mean_word_length, min_mean_word_length):
        return "gopher_quality:mean_word_length_too_short"
    if _above(stats.mean_word_length, max_mean_word_length):
        return "gopher_quality:mean_word_length_too_long"
    if _above(fraction(text.count("#"), n_tokens), max_symbols_per_token):
        return "gopher_quality:too_many_hashes"
    n_ellipses = text.count("...") + text.count("\u2026")
    if _above(fraction(n_ellipses, n_tokens), max_symbols_per_token):
        return "gopher_quality:too_many_ellipses"
    lines = text.splitlines()
    n_bullet_lines = sum(line.lstrip().startswith(BULLETS) for line in lines)
    if _above(fraction(n_bullet_lines, len(lines)), max_bullet_line_fraction):
        return "gopher_quality:too_many_bullet_lines"
    n_ellipsis_lines = sum(line.rstrip().endswith(ELLIPSES) for line in lines)
    if _above(fraction(n_ellipsis_lines, len(lines)), max_ellipsis_line_fraction):
        return "gopher_quality:too_many_ellipsis_lines"
    if _below(fraction(stats.n_words_with_letter, n_tokens), min_tokens_with_letter_fraction):
        return "gopher_quality:too_few_tokens_with_letter"
    found = stats.tokens if rules == "fineweb" else set(stats.tokens)
    if min_stop_words is not None and sum(map(stop_words.__contains__, found)) < min_stop_words:
        return "gopher_quality:too_few_stop_words"
    return None


def gopher_repetition(
    text: str,
    *,
    max_duplicate_paragraph_fraction: float | None = 0.30,
    max_duplicate_paragraph_char_fraction: float | None = 0.20,
    max_duplicate_line_fraction: float | None = 0.30,
    max_duplicate_line_char_fraction: float | None = 0.20,
    top_ngram_char_fractions: Sequence[tuple[int, float]] | None = TOP_NGRAM_CHAR_FRACTIONS,
    duplicate_ngram_char_fractions: Sequence[tuple[int, float]] | None = DUPLICATE_NGRAM_CHAR_FRACTIONS,
) -> str | None:
    """Drop text that repeats itself (Rae et al. 2021, Appendix A.1.1, Table A1).

    Character fractions are over all characters of the text. Paragraphs are split on
    blank lines, lines on newlines; a copy counts as duplicate from its second
    occurrence. Limits are inclusive; None turns a rule off.

    Args:
        max_duplicate_paragraph_fraction, max_duplicate_line_fraction: most paragraphs
            (lines) that repeat an earlier one, per paragraph (line).
        max_duplicate_paragraph_char_fraction, max_duplicate_line_char_fraction: most
            characters in those repeated paragraphs (lines).
        top_ngram_char_fractions: `(n, limit)` pairs: most characters covered by the
            most frequent token n-gram, counted once per occurrence (overlaps included).
        duplicate_ngram_char_fractions: `(n, limit)` pairs: most characters in repeated
            n-grams, scanning left to right and jumping past each repeat (datatrove's
            reading of the paper); characters of a repeat exclude the spaces.
    """
    # datatrove splits lines on the unstripped text, so leading/trailing newlines add
    # empty "lines" that duplicate each other; we strip first: they are not lines.
    stripped = text.strip()
    reason = _duplicate_parts(
        "paragraph",
        _PARAGRAPH_BREAK_RE.split(stripped),
        len(text),
        max_duplicate_paragraph_fraction,
        max_duplicate_paragraph_char_fraction,
    ) or _duplicate_parts(
        "line",
        _LINE_BREAK_RE.split(stripped),
        len(text),
        max_duplicate_line_fraction,
        max_duplicate_line_char_fraction,
    )
    if reason:
        return reason
    top_limits = dict(top_ngram_char_fractions or ())
    duplicate_limits = dict(duplicate_ngram_char_fractions or ())
    tokens = text_stats(text).tokens
    ends = [0, *accumulate(map(len, tokens))]  # ends[i]: characters in tokens[:i]
    for n, firsts in _ngram_first_positions(tokens, max([*top_limits, *duplicate_limits], default=0)):
        if n in top_limits and _above(fraction(_top_ngram_chars(firsts, ends, n), len(text)), top_limits[n]):
            return f"gopher_repetition:top_{n}gram_chars"
        chars = _duplicate_ngram_chars(firsts, ends, n) if n in duplicate_limits else 0
        if _above(fraction(chars, len(text)), duplicate_limits.get(n)):
            return f"gopher_repetition:duplicate_{n}gram_chars"
    return None


def _duplicate_parts(
    kind: str,
    parts: list[str],
    text_length: int,
    max_fraction: float | None,
    max_char_fraction: float | None,
) -> str | None:
    """The reason when too many paragraphs (lines) repeat, by count or by characters."""
    n_duplicates, duplicate_chars = duplicate_counts(parts)
    if _above(fraction(n_duplicates, len(parts)), max_fraction):
        return f"gopher_repetition:duplicate_{kind}s"
    if _above(fraction(duplicate_chars, text_length), max_char_fraction):
        return f"gopher_repetition:duplicate_{kind}_chars"
    return None


def _ngram_first_positions(tokens: list[str], max_n: int) -> Iterator[tuple[int, list[int]]]:
    """Yield `(n, firsts)` for n = 2..max_n: `firsts[i]` is where the n-gram starting at
    token i first occurs.

    Equal n-grams get equal values, so `firsts` serves as n-gram ids: level n keys each
    position by its level n - 1 id and the id of one more token, a pair of ints instead
    of a tuple of n strings. Once all n-grams are distinct, longer ones are too.
    """
    ids: dict = {}
    token_firsts = firsts = list(map(ids.setdefault, tokens, count()))
    all_distinct = len(ids) == len(firsts)
    for n in range(2, max_n + 1):
        if all_distinct:
            firsts = firsts[:-1]
        else:
            ids = {}
            firsts = list(map(ids.setdefault, zip(firsts, token_firsts[n - 1 :]), count()))
            all_distinct = len(ids) == len(firsts)
        yield n, firsts


def _top_ngram_chars(firsts: list[int], ends: list[int], n: int) -> int:
    """Characters (with separating spaces) times occurrences of the most frequent n-gram.

    Ties go to the n-gram seen first, as with `Counter.most_common`.
    """
    if not firsts:
        return 0
    first, occurrences = max(Counter(firsts).items(), key=itemgetter(1))
    return (ends[first + n] - ends[first] + n - 1) * occurrences


def _duplicate_ngram_chars(firsts: list[int], ends: list[int], n: int) -> int:
    """Characters (spaces excluded) of repeated n-grams, scanning left to right and
    jumping past each repeat found.

    Same result as visiting every position, but only positions whose n-gram occurred
    before are visited one by one; runs of first occurrences join `seen` in bulk.
    """
    seen: set[int] = set()
    chars = i = 0
    for copy in compress(count(), map(ne, firsts, count())):
        if copy < i:  # inside a repeat the scan jumped over
            continue
        seen.update(firsts[i:copy])
        if firsts[copy] in seen:
            chars += ends[copy + n] - ends[copy]
            i = copy + n
        else:  # its earlier copies were all jumped over
            seen.add(firsts[copy])
            i = copy + 1
    return chars
