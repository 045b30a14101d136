"""FineWeb's own quality rules (Penedo et al. 2024, section 3.3 and Appendix).

They target what Gopher and C4 leave behind in web text: lists, menus and boilerplate
lines. By default decisions, including which side of each threshold drops, follow
datatrove's FineWebQualityFilter as it built FineWeb; `rules="datatrove"` follows datatrove
0.10 instead, which skips blank lines and keeps a value equal to a limit (it also counts line
ends of every script by default, FineWeb-2's; pass those as `line_end_punctuation`).
BENCHMARKS.md ("data_prep vs datatrove") measures both against datatrove.
"""

from __future__ import annotations

import operator

from data_prep.filters.text_stats import check_rules, duplicate_counts, fraction, text_stats

LINE_END_PUNCTUATION = (".", "'", '"', "!", "?")


def fineweb_quality(
    text: str,
    *,
    min_punctuated_line_fraction: float | None = 0.12,
    max_short_line_fraction: float | None = 0.67,
    short_line_max_chars: int = 30,
    max_duplicate_line_char_fraction: float | None = 0.01,
    max_newlines_per_token: float | None = 0.3,
    line_end_punctuation: tuple[str, ...] = LINE_END_PUNCTUATION,
    rules: str = "fineweb",
) -> str | None:
    """Return None to keep `text`, or the reason `"fineweb_quality:<rule>"` to drop it.

    Lines are split on every newline and not stripped. With `rules="fineweb"` empty lines
    count, and the limit itself drops for the first three rules (datatrove compared with
    <= and >=) and keeps for the last (>). With `rules="datatrove"` lines holding only
    whitespace are skipped (none left: `no_text`) and the limit keeps for every rule.
    None turns a rule off.

    Args:
        min_punctuated_line_fraction: lines ending in `line_end_punctuation` must exceed this share.
        max_short_line_fraction: lines of at most `short_line_max_chars` characters must
            stay under this share.
        short_line_max_chars: the longest line that counts as short.
        max_duplicate_line_char_fraction: characters in repeated non-empty lines must
            stay under this share of the characters outside newlines.
        max_newlines_per_token: most newlines per token, punctuation included (list-like
            pages: menus, link lists).
        line_end_punctuation: the endings that make a line punctuated.
        rules: "fineweb" or "datatrove" (see above).
    """
    check_rules(rules)
    lines = text.split("\n")
    if rules == "datatrove":
        lines = [line for line in lines if line.strip()]
        if not lines:
            return "fineweb_quality:no_text"
    # At the limit: FineWeb dropped (<=, >=), datatrove 0.10 keeps (<, >).
    at_most, at_least = (operator.le, operator.ge) if rules == "fineweb" else (operator.lt, operator.gt)
    n_punctuated = sum(line.endswith(line_end_punctuation) for line in lines)
    if min_punctuated_line_fraction is not None and at_most(n_punctuated / len(lines), min_punctuated_line_fraction):
        return "fineweb_quality:too_few_punctuated_lines"
    n_short = sum(len(line) <= short_line_max_chars for line in lines)
    if max_short_line_fraction is not None and at_least(n_short / len(lines), max_short_line_fraction):
        return "fineweb_quality:too_many_short_lines"
    n_newlines = text.count("\n")
    if max_duplicate_line_char_fraction is not None:
        _, duplicate_chars = duplicate_counts(line for line in lines if line.strip())
        if at_least(fraction(duplicate_chars, len(text) - n_newlines), max_duplicate_line_char_fraction):
            return "fineweb_quality:too_many_duplicate_line_chars"
    n_tokens = len(text_stats(text).tokens)
    if max_newlines_per_token is not None and fraction(n_newlines, n_tokens) > max_newlines_per_token:
        return "fineweb_quality:too_many_newlines_per_token"
    return None
