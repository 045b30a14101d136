"""Word splitting and counts shared by the heuristic filters, computed once per text.

The published filters were tuned on NLTK's English word tokenizer (datatrove runs
`nltk.word_tokenize`), so the token rules below imitate its decisions with one regex,
without NLTK's cost:

- brackets, quotes and `, ; : @ # $ % & ? ! *` are tokens of their own, as are `...`
  and `--`; a word's final period is split off;
- everything else stays inside the token it touches, as NLTK leaves it: hyphens,
  slashes, `=`, `+`, `|`, `¶`, inner periods (`3.11.2`, `os.path`), inner apostrophes
  (`O'Neil`), and `,`/`:` before a digit (`1,000`, `10:30`);
- English clitics become a second token (`John's` -> `John` `'s`, `don't` -> `don` `'t`:
  NLTK says `do` `n't`; the count and the characters are the same). The typographic
  apostrophe is a token of its own, also inside a word, as NLTK splits it (`it’s` -> `it`
  `’` `s`).

Runs of scripts written without spaces between words (Chinese, Japanese, Thai, Lao,
Khmer, Myanmar, Tibetan) are split into words by ICU's dictionary-based word break
iterator (icu4py, which bundles ICU4C): one maintained segmenter for every such script,
where FineWeb-2 loads one library per language (jieba, SudachiPy, pythainlp, ...), so
Gopher's mean word length and n-gram rules measure words there as they do in English
(a Chinese word is mostly 1 to 3 characters). Text without those scripts never reaches
ICU: its tokens are the regex's alone.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable

from icu4py.breakers import WordBreaker

_NO_SPACE_SCRIPTS = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0002fa1f"  # CJK extensions B and later
)
# NLTK splits these off as tokens of their own (and spaCy the Arabic marks, for FineWeb-2's
# Arabic stop word "،"); every other visible character (letters,
# digits, `- / = + | ~ ^ _`, `¶`, `©`, ...) stays inside the token it touches.
_SPLIT = r"()\[\]{}<>,;:@#$%&?!*\"'`\u2018\u2019\u201c\u201d\u00ab\u00bb\u201e\u060c\u061b\u061f"
_KEPT = rf"[^\s{_SPLIT}.{_NO_SPACE_SCRIPTS}-]"  # stays in its token; so does a lone "-"
_RUN = rf"(?:{_KEPT}+|-(?!-){_KEPT}*)(?:-(?!-){_KEPT}*)*"  # "--" is a token of its own
_JOINER = r"(?:\.|[,:](?=\d)|'(?!(?i:s|re|ve|ll|d|m|t)\b)(?=\w))"
NO_SPACE_RUN_RE = re.compile(rf"[{_NO_SPACE_SCRIPTS}]+")
TOKEN_RE = re.compile(
    rf"[{_NO_SPACE_SCRIPTS}]+"  # a run of a script without spaces: split into words by ICU below
    rf"|{_JOINER}*{_RUN}(?:{_JOINER}+{_RUN})*"  # 3.11.2, 1,000, O'Neil, os.path
    r"|'(?i:s|re|ve|ll|d|m|t)\b"  # clitic: 's 're 't
    rf"|\.{{2,}}|--|[{_SPLIT}.]"  # ellipsis, double dash, or one split character
)
_ALPHANUMERIC_RE = re.compile(r"[^\W_]")
_LETTER_RE = re.compile(r"[^\W\d_]")


def segment(run: str) -> list[str]:
    """The words of a run of scripts without spaces, by ICU's word break rules and dictionaries.

    The locale does not matter here: ICU picks the dictionary by script. Its `segments()`
    counts UTF-16 units, so the pieces are taken from the iterator, which yields strings.
    """
    return list(WordBreaker(run, "und"))


def split_words(text: str) -> list[str]:
    """`text.split()`, with each run of a script without spaces split into its words.

    C4 counts a line's words by whitespace; this keeps that count for text with spaces.
    """
    pieces = text.split()
    if NO_SPACE_RUN_RE.search(text) is None:
        return pieces
    return [word for piece in pieces for part in _split_runs(piece) for word in part]


def _split_runs(piece: str) -> Iterable[list[str]]:
    """The parts of `piece`: its runs of scripts without spaces as ICU's words, what lies between kept whole."""
    start = 0
    for match in NO_SPACE_RUN_RE.finditer(piece):
        if match.start() > start:
            yield [piece[start:match.start()]]
        yield segment(match.group())
        start = match.end()
    if start < len(piece):
        yield [piece[start:]]


def _has_alphanumeric(token: str) -> bool:
    return token[-1].isalnum() or _ALPHANUMERIC_RE.search(token) is not None


def _has_letter(word: str) -> bool:
    return word.isalpha() or _LETTER_RE.search(word) is not None


class TextStats:
    """Lazily computed tokens of one text; each filter pays only for what it reads."""

    def __init__(self, text: str):
        self.text = text

    @functools.cached_property
    def tokens(self) -> list[str]:
        """Words and punctuation, in order (what NLTK's `word_tokenize` would return)."""
        tokens = TOKEN_RE.findall(self.text)
        if NO_SPACE_RUN_RE.search(self.text) is None:
            return tokens
        return [word for token in tokens
                for word in (segment(token) if NO_SPACE_RUN_RE.fullmatch(token) else (token,))]

    @functools.cached_property
    def words(self) -> list[str]:
        """Tokens with at least one letter or digit: punctuation and symbols left out."""
        return [token for token in self.tokens if _has_alphanumeric(token)]

    @functools.cached_property
    def n_words_with_letter(self) -> int:
        """Words with at least one letter (`1999` and `3.11` have none)."""
        return sum(map(_has_letter, self.words))

    @functools.cached_property
    def mean_word_length(self) -> float:
        """Mean characters per word; 0 for a text without words."""
        return sum(map(len, self.words)) / len(self.words) if self.words else 0.0


@functools.lru_cache(maxsize=8)
def text_stats(text: str) -> TextStats:
    """The stats of `text`, shared by the filters that run on the same string in turn.

    Python caches a string's hash and compares the same object by identity first, so a
    lookup costs almost nothing and tokenizing happens once per document.
    """
    return TextStats(text)


def fraction(part: float, whole: float) -> float:
    """`part / whole`, and 0 for an empty whole (no lines, no words, no characters)."""
    return part / whole if whole else 0.0


def duplicate_counts(items: Iterable[str]) -> tuple[int, int]:
    """How many items repeat an earlier one, and their characters (first copies excluded)."""
    counts = Counter(items)
    n_duplicates = chars = 0
    for item, count in counts.items():
        if count > 1:
            n_duplicates += count - 1
            chars += (count - 1) * len(item)
    return n_duplicates, chars


# The rule sets a filter can follow where datatrove changed a rule after building FineWeb:
# "fineweb" as datatrove built FineWeb (2024), "datatrove" as datatrove 0.10 has it.
RULES = ("fineweb", "datatrove")


def check_rules(rules: str) -> None:
    if rules not in RULES:
        raise ValueError(f"rules must be one of {RULES}, got {rules!r}")
