"""The heuristic filter stages: Gopher, C4 and FineWeb rules (data_prep/filters), thresholds from their groups.

Each stage's config group holds the keyword thresholds of its filter function, with the
published defaults (data_prep/schema.py reads them from the function's signature).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import ml_collections

from data_prep.document import Document, Result
from data_prep.filters import c4_quality, fineweb_quality, gopher_quality, gopher_repetition
from data_prep.stage import DocumentStage, filter_verdict, register, settings
from pretrain_common.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TextFilter(DocumentStage):
    """A filter of the text, `rules(text, **thresholds)`, whose thresholds are config.<name>."""

    rules: ClassVar[Callable[..., Any]]
    thresholds: dict[str, Any]

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> TextFilter:
        thresholds = settings(cls.rules, cls.name, config)
        try:
            cls.rules("", **thresholds)  # a bad value or word list fails here, not in a worker on every document
        except (ValueError, OSError) as error:
            raise ConfigError(f"config.{cls.name}: {error}") from error
        return cls(thresholds)

    def decide(self, doc: Document) -> Result:
        return filter_verdict(doc, self.rules(doc.text, **self.thresholds))


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
        return [config.c4.bad_words_path] if config.c4.bad_words_path else []

    def decide(self, doc: Document) -> Result:
        cleaned = self.rules(doc.text, **self.thresholds)
        return filter_verdict(doc, cleaned.reason) if cleaned.reason else dataclasses.replace(doc, text=cleaned.text)


@register
class FinewebQuality(TextFilter):
    name = group = "fineweb_quality"
    rules = staticmethod(fineweb_quality)
