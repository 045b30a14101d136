"""Exact dedup finds the Debian Handbook pages that other languages left untranslated.

Some translations of a page are the English page unchanged. Every such copy must
land in one exact-duplicate group with the en-US page of the same file name, and no
group may join two different pages. A few small pages keep the test fast: ones
copied by nearly every language, by one, by none, and one whose copies differ from
English only in punctuation or case (equal after normalization).
"""

import collections
import tarfile

from data_prep.dedup import DedupConfig, deduplicate
from data_prep.dedup.exact import REMOVED as EXACT
from data_prep.dedup.normalize import normalize
from data_prep.document import Document
from data_prep.extract import html_to_text

PAGES = ("sect.aptosid.html", "sect.kali.html", "sect.selected-approach.html", "preface.html",
         "case-study.html", "sect.role-of-distributions.html")


def handbook_docs(path) -> list[Document]:
    docs = []
    with tarfile.open(path) as tar:
        for member in tar:
            language, page = (["", ""] + member.name.split("/"))[-2:]
            if member.isfile() and page in PAGES:
                # trafilatura, as when the pages below were chosen: it drops the page title, which
                # many languages translated over an untranslated body (resiliparse keeps it).
                text = html_to_text(tar.extractfile(member).read().decode("utf-8"), engine="trafilatura")
                if text:
                    docs.append(Document(f"handbook/{language}/{page}", "handbook", member.name, text))
    return docs


def test_untranslated_pages_group_with_the_english_page(shared_corpora, tmp_path):
    docs = handbook_docs(shared_corpora / "debian-handbook-html.tar.xz")
    result = deduplicate(docs, str(tmp_path), DedupConfig(near=False, num_workers=1))
    text = {d.id: d.text for d in docs}
    groups = collections.defaultdict(set)
    for d in docs:
        groups[result.representative(d.id)].add(d.id)
    assert {dup.removed for dup in result.removed.values()} == {EXACT}
    for page in PAGES:
        english = f"handbook/en-US/{page}"
        group = groups[result.representative(english)]
        same_page = [d for d in text if d.endswith("/" + page)]
        copies = {d for d in same_page if text[d] == text[english]}
        equal_normalized = {d for d in same_page if normalize(text[d]) == normalize(text[english])}
        assert copies <= group == equal_normalized, f"{page}: grouped {sorted(group)}, copies {sorted(copies)}"
    assert all(len({d.split("/")[-1] for d in group}) == 1 for group in groups.values())
    assert len(groups[result.representative("handbook/en-US/sect.aptosid.html")]) >= 20
    assert len(groups[result.representative("handbook/en-US/sect.selected-approach.html")]) == 2
    assert len(groups[result.representative("handbook/en-US/sect.role-of-distributions.html")]) == 1
    assert len(groups[result.representative("handbook/en-US/case-study.html")]) >= 3  # equal only normalized
    assert len(result.removed) >= 50, result.stats
