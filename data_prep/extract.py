"""HTML to the main text of the page: the one place that picks the extractor.

Two engines, chosen by `config.extract.engine`:

- trafilatura, the FineWeb choice (Penedo et al. 2024, section 3.2): it removes
  navigation, footers and other boilerplate better than WARC-provided text.
- resiliparse (`extract_plain_text(main_content=True)`), the DCLM choice (Li et al.
  2024, section 3.1): rule-based main-content selection on a fast C++ DOM.

Both favor precision (drop doubtful boilerplate rather than keep it), keep tables
and code blocks, which carry content in technical pages, and leave out links,
image alt texts and comment sections. BENCHMARKS.md ("HTML extraction") compares
them on the shared corpora (benchmarks/extract_quality.py); see
data_prep/schema.py for the default and why.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import trafilatura
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from data_prep.document import Document, Dropped, Removed, Result
from pretrain_common.errors import ConfigError

STAGE = "extract"


def _trafilatura(html: str, url: str | None) -> str | None:
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


def _resiliparse(html: str, url: str | None) -> str | None:
    return extract_plain_text(HTMLTree.parse(html), preserve_formatting=True, main_content=True,
                              alt_texts=False, links=False, comments=False) or None


ENGINES: dict[str, Callable[[str, str | None], str | None]] = {
    "trafilatura": _trafilatura,
    "resiliparse": _resiliparse,
}
DEFAULT_ENGINE = "resiliparse"  # config.extract.engine's default; data_prep/schema.py says why


def _engine(name: str) -> Callable[[str, str | None], str | None]:
    if name not in ENGINES:
        raise ConfigError(f"config.extract.engine is {name!r}; known engines: {sorted(ENGINES)}")
    return ENGINES[name]


def html_to_text(html: str, url: str | None = None, engine: str = DEFAULT_ENGINE) -> str | None:
    """The main text of `html` as plain text, or None when no main content is found."""
    return _engine(engine)(html, url)


def extract(doc: Document, engine: str = DEFAULT_ENGINE) -> Result:
    """The document with its HTML replaced by main text; other documents pass as they are."""
    if doc.metadata.get("format") != "html":
        return doc
    text = html_to_text(doc.text, doc.url, engine)
    if not text or not text.strip():
        return Dropped(doc.id, Removed(STAGE, "no_main_text"))
    return dataclasses.replace(doc, text=text, metadata={**doc.metadata, "format": "text"})


def extract_stage(engine: str) -> Callable[[Document], Result]:
    """The extract stage with `engine`; an unknown engine fails here, before any worker starts."""
    _engine(engine)
    return functools.partial(extract, engine=engine)
