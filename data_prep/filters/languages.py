"""Per-language thresholds of the heuristic filters: one table, read through each document's language.

The table is JSON, `{"languages": {code: {filter group: {threshold: value}}}}`, with the
codes the langid stage writes in a document's metadata (lid.176's, data_prep/langid.py)
and the groups and keys of config.gopher_quality, gopher_repetition, c4 and
fineweb_quality. For a document of a listed language its values replace the group's;
every other document, and one with no language (no langid stage before), gets the
group's values: the English recipe.

The shipped table, `fineweb2` (fineweb2_languages.json beside this file), holds FineWeb-2's
published thresholds and stop words for 30 languages (its `sources` names the FineWeb-2
config each came from), mapped to this package's keys:

    FineWeb-2                  data_prep
    min/max_avg_word_length    gopher_quality.min/max_mean_word_length
    max_non_alpha_words_ratio  gopher_quality.min_tokens_with_letter_fraction (a minimum, despite its name)
    stopwords                  gopher_quality.stop_words
    dup_line_frac              gopher_repetition.max_duplicate_line_fraction
    top_n_grams, dup_n_grams   gopher_repetition.top_ngram_char_fractions, duplicate_ngram_char_fractions
    line_punct_thr             fineweb_quality.min_punctuated_line_fraction
    new_line_ratio             fineweb_quality.max_newlines_per_token

and, not from FineWeb-2, the sentence-ending marks of Chinese, Japanese, Arabic, Persian
and Hindi for fineweb_quality.line_end_punctuation and c4.terminal_punctuation.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

Table = dict[str, dict[str, dict[str, Any]]]  # language -> filter group -> threshold -> value

SHIPPED = {"fineweb2": os.path.join(os.path.dirname(__file__), "fineweb2_languages.json")}
DEFAULT_TABLE = "fineweb2"


def table_path(table: str) -> str:
    """The file of a shipped table's name, or `table` itself: a path."""
    return SHIPPED.get(table, table)


@functools.cache
def load_table(table: str) -> Table:
    """The table named or at `table`, JSON lists as tuples; ValueError saying what is wrong with it."""
    path = table_path(table)
    try:
        with open(path, encoding="utf-8") as f:
            languages = json.load(f, object_pairs_hook=dict).get("languages")
    except (OSError, ValueError, AttributeError) as error:
        raise ValueError(f"cannot read a language table from {path!r} ({error})") from error
    if not isinstance(languages, dict) or not all(
            isinstance(groups, dict) and all(isinstance(values, dict) for values in groups.values())
            for groups in languages.values()):
        raise ValueError(f'{path!r} is not {{"languages": {{code: {{filter group: {{threshold: value}}}}}}}}')
    return {language: {group: {key: _tuples(value) for key, value in values.items()}
                       for group, values in groups.items()}
            for language, groups in languages.items()}


def _tuples(value: Any) -> Any:
    """JSON lists as tuples, nested too: the filters' sequence thresholds are tuples in the config."""
    return tuple(map(_tuples, value)) if isinstance(value, list) else value
