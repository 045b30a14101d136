"""The pii stage: replaces emails, public IPs and phone numbers (data_prep/pii.py); it never removes."""

from __future__ import annotations

import dataclasses

from data_prep import pii
from data_prep.document import Document, Result
from data_prep.stage import DocumentStage, Tallies, register

PII_KEY = "pii"  # metadata: replacements by kind, only the kinds found


@register
class Pii(DocumentStage):
    name = "pii"

    def decide(self, doc: Document) -> Result:
        scrubbed = pii.scrub_pii(doc.text)
        found = {kind: n for kind, n in scrubbed.counts.items() if n}
        return dataclasses.replace(doc, text=scrubbed.text, metadata={**doc.metadata, PII_KEY: found})

    def tally(self, result: Result) -> Tallies:
        return {"pii_replaced": result.metadata[PII_KEY]}
