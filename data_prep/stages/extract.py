"""The extract stage: HTML to its main text (data_prep/extract.py), other documents as they are."""

from __future__ import annotations

import dataclasses

import ml_collections

from data_prep import extract
from data_prep.document import Document, Result
from data_prep.stage import Decide, DocumentStage, register


@register
@dataclasses.dataclass(frozen=True)
class Extract(DocumentStage):
    name = "extract"
    group = "extract"
    extract_html: Decide  # extract.extract with the engine bound

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Extract:
        return cls(extract.extract_stage(config.extract.engine))  # an unknown engine fails here

    def decide(self, doc: Document) -> Result:
        return self.extract_html(doc)
