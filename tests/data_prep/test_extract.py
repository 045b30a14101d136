"""extract: HTML becomes its main text; navigation and footers go, code and tables stay, with either engine.

On real pages the check is benchmarks/extract_quality.py's score: words of the page's
main-content element kept, boilerplate strings of its navigation, sidebar and footer
not leaked.
"""

import os
import sys

import pytest

from data_prep import extract
from data_prep.document import Document
from pretrain_common.errors import ConfigError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import extract_quality  # noqa: E402

ENGINES = sorted(extract.ENGINES)

ARTICLE = """<html><body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/shop">Shop</a></nav>
<article><h1>Sorting a list in Python</h1>
<p>Python has a built-in function that sorts any iterable and returns a new list, leaving the input as it was.</p>
<pre><code>def by_length(words):
    return sorted(words, key=len)
</code></pre>
<p>The table below compares the two ways of sorting that are commonly used in practice.</p>
<table><tr><th>method</th><th>in place</th></tr><tr><td>sorted</td><td>no</td></tr>
<tr><td>list.sort</td><td>yes</td></tr></table>
<p>Use list.sort when the original order is no longer needed, and sorted otherwise.</p></article>
<footer>Copyright 2024 Example Corp. All rights reserved. Privacy policy.</footer>
</body></html>"""


@pytest.mark.parametrize("engine", ENGINES)
def test_main_text_keeps_code_with_indentation_and_tables(engine):
    text = extract.html_to_text(ARTICLE, "https://example.com/sorting", engine)
    assert "def by_length(words):\n    return sorted(words, key=len)" in text
    assert "list.sort" in text and "in place" in text
    assert "Sorting a list in Python" in text


@pytest.mark.parametrize("engine", ENGINES)
def test_boilerplate_is_removed(engine):
    text = extract.html_to_text(ARTICLE, None, engine)
    assert "Copyright" not in text and "About us" not in text


@pytest.mark.parametrize("engine", ENGINES)
def test_a_page_without_content_is_dropped_with_a_reason(engine):
    doc = Document(id="s/empty.html", source="s", url="x", text="<html><body></body></html>",
                   metadata={"format": "html"})
    assert str(extract.extract(doc, engine).removed) == "extract:no_main_text"


def test_only_html_documents_are_extracted():
    doc = Document(id="s/a.txt", source="s", url="x", text="<p>literal markup in a text file</p>")
    assert extract.extract(doc) is doc


def test_an_unknown_engine_is_a_config_error_when_the_stage_is_built():
    with pytest.raises(ConfigError, match="known engines: \\['resiliparse', 'trafilatura'\\]"):
        extract.extract_stage("justext")


@pytest.fixture(scope="module")
def real_pages(shared_corpora):
    """20 Python docs pages and 10 en-US handbook pages, evenly spaced, with their references."""
    docs = extract_quality.read_pages(extract_quality.PYTHON_DOCS + ".tar.xz", 26)
    handbook = extract_quality.read_pages(extract_quality.HANDBOOK + ".tar.xz", 12, ("en-US",))
    return [(page, extract_quality.reference(page)) for page in docs + handbook]


def _score(real_pages, engine, corpus):
    score = extract_quality.Score()
    for page, reference in real_pages:
        if page.corpus == corpus:
            score.add(page, reference, engine(page.html, None))
    return score


@pytest.mark.parametrize("engine", ENGINES)
def test_real_pages_keep_the_main_text_and_drop_navigation_sidebar_and_footer(real_pages, engine):
    for corpus, min_recall in ((extract_quality.PYTHON_DOCS, 0.9), (extract_quality.HANDBOOK, 0.5)):
        score = _score(real_pages, lambda html, url: extract.html_to_text(html, url, engine), corpus)
        assert not score.empty and score.boilerplate >= 3 * score.pages  # strings to leak on every page
        assert score.common_words / score.extracted_words > 0.98, corpus  # precision
        # The handbook's aside boxes (div.sidebar: "BACK TO BASICS", "SECURITY") are main
        # content that both engines drop as boilerplate.
        assert score.common_words / score.reference_words > min_recall, corpus
        assert score.leaked / score.boilerplate < 0.02, corpus


def test_the_whole_page_leaks_the_boilerplate_that_the_score_counts(real_pages):
    score = _score(real_pages, extract_quality.ENGINES["whole page (resiliparse, no selection)"],
                   extract_quality.PYTHON_DOCS)
    assert score.leaked / score.boilerplate > 0.9
