"""HTML to the main text of the page: the one place that picks the extractor.

trafilatura is the FineWeb choice (Penedo et al. 2024, section 3.2): it removes
navigation, footers and other boilerplate better than WARC-provided text. We
favor precision (drop doubtful boilerplate rather than keep it) and keep tables
and code blocks, which carry content in technical pages. To compare extractors,
change `html_to_text` and nothing else.
"""

from __future__ import annotations

import dataclasses

import trafilatura

from data_prep.document import Document, Removed
from data_prep.readers import Dropped, Result

STAGE = "extract"


def html_to_text(html: str, url: str | None = None) -> str | None:
    """The main text of `html` as plain text, or None when no main content is found."""
    return trafilatura.extract(
        html,
        url=url,
        output_format="txt",
        favor_precision=True,
        include_tables=True,
        include_comments=False,
        include_formatting=False,
        include_images=False,
        include_links=False,
        deduplicate=False,  # deduplication is its own stage, across documents
        with_metadata=False,
    )


def extract(doc: Document) -> Result:
    """The document with its HTML replaced by main text; other documents pass as they are."""
    if doc.metadata.get("format") != "html":
        return doc
    text = html_to_text(doc.text, doc.url)
    if not text or not text.strip():
        return Dropped(doc.id, Removed(STAGE, "no_main_text"))
    return dataclasses.replace(doc, text=text, metadata={**doc.metadata, "format": "text"})
