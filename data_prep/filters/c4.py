"""C4's line cleaning and page rules (Raffel et al. 2020, section 2.2).

The rules as implemented in TFDS (`tensorflow_datasets/text/c4_utils.py`, `clean_page`
and the bad-words filter) and datatrove's C4QualityFilter, in their order: a line is
checked for an overlong word, loses its citation markers, then must end in terminal
punctuation and hold enough words; only lines that survived so far can drop the whole
page for "lorem ipsum" or "{". So a "{" in a menu line without punctuation is harmless.

The bad-words rule needs a word list that we do not ship: pass the path of a file with
one word or phrase per line, e.g. the language's file from the "List of Dirty, Naughty,
Obscene, and Otherwise Bad Words" (github.com/LDNOOBW/List-of-Dirty-Naughty-Obscene-and-
Otherwise-Bad-Words; C4 used the `en` file).
"""

from __future__ import annotations

import functools
import os
import re
from typing import NamedTuple

from data_prep.filters.text_stats import split_words

CITATION_RE = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
TERMINAL_PUNCTUATION = (".", "?", "!", '"', "'")  # TFDS has no "'"; datatrove adds it
POLICY_RE = re.compile(
    "terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies"
)
# A sentence ends at terminal marks (and closing quotes or brackets) followed by the end
# of the line or by a space and something other than a lowercase letter: a cheap stand-in
# for the NLTK punkt tokenizer that C4 counts sentences with. A line's sentences are the
# pieces between ends, its unterminated tail included, as punkt (and datatrove's spaCy
# sentencizer) count them: that tail exists when lines need no terminal punctuation.
# Chinese and Japanese full stops end a sentence wherever they stand: no space follows them.
SENTENCE_END_RE = re.compile(r"[.!?]+[\"'\u2019\u201d)\]]*(?:$|\s+(?![a-z]))"
                             r"|[\u3002\uff01\uff1f]+[\u300d\u300f\uff09]*")


class Cleaned(NamedTuple):
    """What a text-rewriting filter returns: exactly one of the fields is None.

    `text` is the rewritten text when the document is kept; `reason` says why it was
    dropped. Unpack it: `text, reason = c4_quality(raw)`.
    """

    text: str | None
    reason: str | None


def c4_quality(
    text: str,
    *,
    min_words_per_line: int | None = 3,
    min_sentences: int | None = 5,
    max_word_length: int | None = 1000,
    remove_citations: bool = True,
    require_terminal_punctuation: bool = True,
    terminal_punctuation: tuple[str, ...] = TERMINAL_PUNCTUATION,
    drop_javascript_lines: bool = True,
    drop_policy_lines: bool = True,
    drop_lorem_ipsum: bool = True,
    drop_curly_bracket: bool = True,
    bad_words_path: str | os.PathLike[str] | None = None,
) -> Cleaned:
    """Keep only C4-clean lines of `text`, or drop it as `"c4:<rule>"` (`"c4:no_lines"` when none is left).

    Args:
        min_words_per_line: fewest whitespace-separated words in a kept line, counted
            after citation markers are removed (as TFDS does); runs of scripts without
            spaces count their words (text_stats.split_words).
        min_sentences: fewest sentences in the kept lines for the page to survive.
        max_word_length: lines with a longer word (a URL, base64) are dropped.
        remove_citations: strip Wikipedia markers `[1]`, `[edit]`, `[citation needed]`.
        require_terminal_punctuation: keep only lines ending in `terminal_punctuation` and not `...`.
        terminal_punctuation: the line endings that end a sentence (the language table
            adds `。` for Chinese and Japanese, `؟` for Arabic and Persian).
        drop_javascript_lines: drop lines mentioning javascript ("enable JavaScript").
        drop_policy_lines: drop cookie, privacy-policy and terms-of-use lines.
        drop_lorem_ipsum: drop the page when a kept line says "lorem ipsum".
        drop_curly_bracket: drop the page when a kept line has "{" (code, not prose).
        bad_words_path: drop the page when its kept text has a word of this list.
    """
    bad_words = None if bad_words_path is None else bad_words_regex(bad_words_path)  # a bad list fails on any text
    kept: list[str] = []
    n_sentences = 0
    for line in text.splitlines():
        line = line.strip()
        too_long = max_word_length is not None and len(line) > max_word_length
        if too_long and max(map(len, line.split())) > max_word_length:
            continue
        if remove_citations:
            line = CITATION_RE.sub("", line)
        if require_terminal_punctuation and (not line.endswith(terminal_punctuation) or line.endswith("...")):
            continue
        if min_words_per_line is not None and len(split_words(line)) < min_words_per_line:
            continue
        lowered = line.lower()
        if drop_lorem_ipsum and "lorem ipsum" in lowered:
            return Cleaned(None, "c4:lorem_ipsum")
        if drop_javascript_lines and "javascript" in lowered:
            continue
        if drop_curly_bracket and "{" in line:
            return Cleaned(None, "c4:curly_bracket")
        if drop_policy_lines and POLICY_RE.search(lowered):
            continue
        n_sentences += max(1, sum(1 for piece in SENTENCE_END_RE.split(line) if piece.strip()))
        kept.append(line)
    if min_sentences is not None and n_sentences < min_sentences:
        return Cleaned(None, "c4:too_few_sentences")
    if not kept:  # possible only without min_sentences: an empty document is not a document
        return Cleaned(None, "c4:no_lines")
    cleaned = "\n".join(kept)
    if bad_words is not None and bad_words.search(cleaned.lower()):
        return Cleaned(None, "c4:bad_words")
    return Cleaned(cleaned, None)


@functools.lru_cache(maxsize=4)
def bad_words_regex(path: str | os.PathLike[str]) -> re.Pattern[str]:
    """Compile the word list at `path` once: any entry, lowercased, between non-word
    characters (TFDS's rule for languages written with spaces)."""
    with open(path, encoding="utf-8") as f:
        words = {line.strip().lower() for line in f} - {""}
    if not words:
        raise ValueError(f"no words in the bad-words list {path}")
    alternatives = "|".join(map(re.escape, sorted(words, key=len, reverse=True)))
    return re.compile(rf"(?:^|\W)(?:{alternatives})(?:$|\W)")
