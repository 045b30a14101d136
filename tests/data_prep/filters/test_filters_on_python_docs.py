"""Smoke test: every filter over real pages of the Python 3.11 documentation.

The archive lives outside the repository, in `../shared/corpora`; without it the test is
skipped, except under CI (CI=true), where its absence is a failure.
"""

import collections
import os
import tarfile
from pathlib import Path

import pytest
import trafilatura

from data_prep.filters import Cleaned, c4_quality, fineweb_quality, gopher_quality, gopher_repetition
from data_prep.pii import scrub_pii

CORPORA = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpora"
ARCHIVE = CORPORA / "python-3.11-docs-html.tar.xz"
EVERY_NTH_PAGE = 25  # about 20 pages from all sections, in archive order


@pytest.fixture(scope="module")
def pages() -> list[str]:
    """Main text of every 25th HTML page, extracted by trafilatura."""
    if not ARCHIVE.exists():
        message = f"the Python docs archive is missing: {ARCHIVE}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    texts = []
    with tarfile.open(ARCHIVE, "r|xz") as archive:  # a stream: one pass, no seeking back
        html_members = (member for member in archive if member.name.endswith(".html"))
        for i, member in enumerate(html_members):
            if i % EVERY_NTH_PAGE == 0:
                html = archive.extractfile(member).read().decode("utf-8")
                texts.append(trafilatura.extract(html, fast=True) or "")
    return [text for text in texts if text]


def test_documentation_pages_mostly_pass_gopher_quality_except_the_letter_rule(pages):
    assert len(pages) >= 15
    reasons = collections.Counter(gopher_quality(text, min_tokens_with_letter_fraction=None) for text in pages)
    assert reasons[None] >= 0.7 * len(pages), reasons


def test_punctuation_heavy_reference_pages_fail_the_letter_rule_as_in_datatrove(pages):
    # Brackets, commas and `>>>` of code samples are tokens, and datatrove counts
    # tokens, not words, under Gopher's "80% of words with a letter": most reference
    # pages fall below. Documented here so that a change of that choice is seen.
    reasons = collections.Counter(gopher_quality(text) for text in pages)
    dropped = len(pages) - reasons[None]
    assert reasons["gopher_quality:too_few_tokens_with_letter"] >= 0.8 * dropped, reasons


def test_every_filter_gives_a_well_formed_verdict_on_real_pages(pages):
    for text in pages:
        for verdict in (gopher_quality(text), gopher_repetition(text), fineweb_quality(text)):
            assert verdict is None or verdict.count(":") == 1
        cleaned = c4_quality(text)
        assert isinstance(cleaned, Cleaned)
        assert (cleaned.text is None) != (cleaned.reason is None)
        assert cleaned.text is None or len(cleaned.text) <= len(text)
        scrubbed = scrub_pii(text)
        assert sum(scrubbed.counts.values()) == 0 or scrubbed.text != text
