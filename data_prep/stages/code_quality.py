"""The code_quality stage: The Stack / StarCoder rules on source files (data_prep/filters/code.py).

Every document it keeps carries its programming language (metadata `language`: the
code reader's, else the one its path's extension names), so exact and MinHash dedup
after it can run per language (`dedup.scope="language"`). The report counts
documents per language, in and kept.
"""

from __future__ import annotations

import dataclasses

from data_prep import code
from data_prep.document import Document, Dropped, Result
from data_prep.filters.code import code_quality
from data_prep.langid import LANGUAGE_KEY
from data_prep.stage import Tallies, register
from data_prep.stages.heuristics import TextFilter


@register
class CodeQuality(TextFilter):
    name = group = "code_quality"
    rules = staticmethod(code_quality)
    scope_keys = (LANGUAGE_KEY,)

    def decide(self, doc: Document) -> Result:
        language = doc.metadata.get(LANGUAGE_KEY) or code.language_of(doc.url)
        if language is None:
            return self.drop(doc, "no_language")
        reason = self.rules(doc.text, **self.thresholds)
        if reason is not None:
            return self.drop(doc, reason.split(":", 1)[1], language=language)
        return dataclasses.replace(doc, metadata={**doc.metadata, LANGUAGE_KEY: language})

    def tally(self, result: Result) -> Tallies:
        language = result.metadata.get(LANGUAGE_KEY)
        if language is None:
            return {}
        if isinstance(result, Dropped):
            return {"languages_in": {language: 1}}
        return {"languages_in": {language: 1}, "languages_kept": {language: 1}}
