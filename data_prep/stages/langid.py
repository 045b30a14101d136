"""The langid stage: each document's language (fastText lid.176), keeping the languages wanted."""

from __future__ import annotations

import dataclasses

import ml_collections

from data_prep import langid
from data_prep.document import Document, Dropped, Result
from data_prep.stage import DocumentStage, Tallies, register


@register
@dataclasses.dataclass(frozen=True)
class LanguageId(DocumentStage):
    name = "langid"
    group = "langid"
    scope_keys = (langid.LANGUAGE_KEY,)
    language_filter: langid.LanguageFilter

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> LanguageId:
        return cls(langid.language_filter(set(config.langid.languages) or None, config.langid.min_score))

    def decide(self, doc: Document) -> Result:
        return self.language_filter(doc)

    def tally(self, result: Result) -> Tallies:
        """Every document identified, kept or removed, by language; and the kept ones."""
        language = result.metadata[langid.LANGUAGE_KEY]
        if isinstance(result, Dropped):
            return {"languages_identified": {language: 1}}
        return {"languages_identified": {language: 1}, "languages_kept": {language: 1}}
