"""extract: HTML becomes its main text; navigation and footers go, code and tables stay."""

from data_prep import extract
from data_prep.document import Document

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


def test_main_text_keeps_code_with_indentation_and_tables():
    text = extract.html_to_text(ARTICLE, "https://example.com/sorting")
    assert "def by_length(words):\n    return sorted(words, key=len)" in text
    assert "list.sort" in text and "in place" in text
    assert "Sorting a list in Python" in text


def test_boilerplate_is_removed():
    text = extract.html_to_text(ARTICLE, None)
    assert "Copyright" not in text and "About us" not in text


def test_a_page_without_content_is_dropped_with_a_reason():
    doc = Document(id="s/empty.html", source="s", url="x", text="<html><body></body></html>",
                   metadata={"format": "html"})
    assert str(extract.extract(doc).removed) == "extract:no_main_text"


def test_only_html_documents_are_extracted():
    doc = Document(id="s/a.txt", source="s", url="x", text="<p>literal markup in a text file</p>")
    assert extract.extract(doc) is doc
