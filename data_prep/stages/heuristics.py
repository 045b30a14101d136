"""The heuristic filter stages: Gopher, C4 and FineWeb rules (data_prep/filters), thresholds from their groups.

Each stage's config group holds the keyword thresholds of its filter function, with the
published defaults (data_prep/schema.py reads them from the function's signature). The
language table (config.language_table, data_prep/filters/languages.py) replaces some of
them for the languages it lists, read from the `language` the langid stage wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import ml_collections

from data_prep.document import Document, Dropped, Result
from data_prep.filters import c4_quality, fineweb_quality, gopher_quality, gopher_repetition, languages
from data_prep.langid import LANGUAGE_KEY
from data_prep.stage import DocumentStage, Tallies, checked_keywords, register, settings
from pretrain_common.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TextFilter(DocumentStage):
    """A filter of the text, `rules(text, **thresholds)`, whose thresholds are config.<name>,
    or the language table's for a document of a language it lists."""

    rules: ClassVar[Callable[..., Any]]
    thresholds: dict[str, Any]
    # config.language_table: a name or path, loaded once per process; the stage pickles small to workers.
    language_table: str | None

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> TextFilter:
        thresholds = settings(cls.rules, cls.name, config)
        by_language = [{**thresholds, **checked_keywords(cls.rules, groups[cls.name],
                                                         f"config.language_table {language}.{cls.name}")}
                       for language, groups in _language_table(config).items() if cls.name in groups]
        for values in (thresholds, *by_language):
            try:
                cls.rules("", **values)  # a bad value or word list fails here, not in a worker on every document
            except (ValueError, OSError) as error:
                raise ConfigError(f"config.{cls.name}: {error}") from error
        return cls(thresholds, config.language_table)

    @classmethod
    def files(cls, config: ml_collections.ConfigDict) -> list[str]:
        """A table given by path (the shipped one is the package's, like its code)."""
        table = config.language_table
        return [table] if table is not None and table not in languages.SHIPPED else []

    def thresholds_for(self, doc: Document) -> dict[str, Any]:
        """The group's thresholds, with the language table's for the document's language over them."""
        language = doc.metadata.get(LANGUAGE_KEY)
        if self.language_table is None or language is None:
            return self.thresholds
        return {**self.thresholds, **languages.load_table(self.language_table).get(language, {}).get(self.name, {})}

    def decide(self, doc: Document) -> Result:
        reason = self.rules(doc.text, **self.thresholds_for(doc))
        return doc if reason is None else self.drop(doc, reason.split(":", 1)[1], **_language_of(doc))

    def tally(self, result: Result) -> Tallies:
        """Per language (when langid ran before): kept, or removed by rule."""
        language = result.metadata.get(LANGUAGE_KEY)
        if language is None:
            return {}
        outcome = result.removed.reason if isinstance(result, Dropped) else "kept"
        return {"by_language": {f"{language}:{outcome}": 1}}


def _language_of(doc: Document) -> dict[str, Any]:
    """The document's language as a removal's metadata, for the tally; nothing when none is known."""
    return {LANGUAGE_KEY: doc.metadata[LANGUAGE_KEY]} if LANGUAGE_KEY in doc.metadata else {}


def _language_table(config: ml_collections.ConfigDict) -> languages.Table:
    """config.language_table loaded, with only known filter groups; {} for None."""
    if config.language_table is None:
        return {}
    if not isinstance(config.language_table, str):
        raise ConfigError(f"config.language_table must be {sorted(languages.SHIPPED)}, a JSON file's path or None, "
                          f"got {config.language_table!r}")
    try:
        table = languages.load_table(config.language_table)
    except ValueError as error:
        raise ConfigError(f"config.language_table: {error}; give {sorted(languages.SHIPPED)}, "
                          "a JSON file's path or None") from error
    groups = {stage.name for stage in TextFilter.__subclasses__()}
    for language, entry in table.items():
        unknown = sorted(entry.keys() - groups)
        if unknown:
            raise ConfigError(f"config.language_table {language} has unknown filter groups {unknown}; "
                              f"known: {sorted(groups)}")
    return table


@register
class GopherRepetition(TextFilter):
    name = group = "gopher_repetition"
    rules = staticmethod(gopher_repetition)


@register
class GopherQuality(TextFilter):
    name = group = "gopher_quality"
    rules = staticmethod(gopher_quality)


@register
class C4(TextFilter):
    """C4 rewrites the text it keeps (only its clean lines); a document with no line left is removed."""

    name = group = "c4"
    rules = staticmethod(c4_quality)

    @classmethod
    def files(cls, config: ml_collections.ConfigDict) -> list[str]:
        bad_words = [config.c4.bad_words_path] if config.c4.bad_words_path else []
        return bad_words + super().files(config)

    def decide(self, doc: Document) -> Result:
        cleaned = self.rules(doc.text, **self.thresholds_for(doc))
        if cleaned.reason:
            return self.drop(doc, cleaned.reason.split(":", 1)[1], **_language_of(doc))
        return dataclasses.replace(doc, text=cleaned.text)


@register
class FinewebQuality(TextFilter):
    name = group = "fineweb_quality"
    rules = staticmethod(fineweb_quality)
