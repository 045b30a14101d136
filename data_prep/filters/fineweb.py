"""FineWeb's own quality rules (Penedo et al. 2024, section 3.3 and Appendix).

They target what Gopher and C4 leave behind in web text: lists, menus and boilerplate
lines. Decisions, including which side of each threshold drops, follow datatrove's
FineWebQualityFilter as it built FineWeb. datatrove 0.10 differs: it skips blank lines,
keeps a value equal to a limit, and counts line ends of every script (FineWeb-2's);
BENCHMARKS.md ("data_prep vs datatrove") measures what that changes.
"""

from __future__ import annotations

from data_prep.filters.text_stats import duplicate_counts, fraction, text_stats

LINE_END_PUNCTUATION = (".", "'", '"', "!", "?")


def fineweb_quality(
    text: str,
    *,
    min_punctuated_line_fraction: float | None = 0.12,
    max_short_line_fraction: float | None = 0.67,
    short_line_max_chars: int = 30,
    max_duplicate_line_char_fraction: float | None = 0.01,
    max_newlines_per_token: float | None = 0.3,
) -> str | None:
    """Return None to keep `text`, or the reason `"fineweb_quality:<rule>"` to drop it.

    Lines are split on every newline, empty ones included, and not stripped. The limit
    itself drops for the first three rules (datatrove compares with <= and >=) and
    keeps for the last (>). None turns a rule off.

    Args:
        min_punctuated_line_fraction: lines ending in `. ' " ! ?` must exceed this share.
        max_short_line_fraction: lines of at most `short_line_max_chars` characters must
            stay under this share.
        short_line_max_chars: the longest line that counts as short.
        max_duplicate_line_char_fraction: characters in repeated non-empty lines must
            stay under this share of the characters outside newlines.
        max_newlines_per_token: most newlines per token, punctuation included (list-like
            pages: menus, link lists).
    """
    lines = text.split("\n")
    n_punctuated = sum(line.endswith(LINE_END_PUNCTUATION) for line in lines)
    if min_punctuated_line_fraction is not None and n_punctuated / len(lines) <= min_punctuated_line_fraction:
        return "fineweb_quality:too_few_punctuated_lines"
    n_short = sum(len(line) <= short_line_max_chars for line in lines)
    if max_short_line_fraction is not None and n_short / len(lines) >= max_short_line_fraction:
        return "fineweb_quality:too_many_short_lines"
    if max_duplicate_line_char_fraction is not None:
        _, duplicate_chars = duplicate_counts(line for line in lines if line.strip())
        if fraction(duplicate_chars, len(text) - len(lines) + 1) >= max_duplicate_line_char_fraction:
            return "fineweb_quality:too_many_duplicate_line_chars"
    n_tokens = len(text_stats(text).tokens)
    if max_newlines_per_token is not None and fraction(len(lines) - 1, n_tokens) > max_newlines_per_token:
        return "fineweb_quality:too_many_newlines_per_token"
    return None
