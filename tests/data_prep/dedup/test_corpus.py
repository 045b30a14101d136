"""The driver: which documents stay, why the others go, scoped and deterministic."""

import random

import pytest

from data_prep.dedup import DedupConfig, Duplicate, deduplicate
from data_prep.dedup.exact import REMOVED as EXACT
from data_prep.dedup.minhash import REMOVED as NEAR
from data_prep.document import Document

SERIAL = DedupConfig(num_workers=1)


def doc(doc_id: str, text: str, source: str = "web", **metadata) -> Document:
    return Document(doc_id, source, doc_id, text, metadata)


@pytest.fixture(scope="module")
def corpus(distinct_docstrings):
    """Distinct docstrings, plus a reformatted copy and an edited copy of the first two."""
    first, second = distinct_docstrings[:2]
    words = second.split()
    docs = [doc(f"web/{i:03d}", text) for i, text in enumerate(distinct_docstrings[:50])]
    docs.append(doc("web/copy-of-000", first.upper().replace(" ", "  ")))  # same after normalization
    docs.append(doc("web/edit-of-001", " ".join(words[:40] + ["changed"] + words[41:])))
    return docs


def test_exact_and_near_duplicates_name_the_kept_document(corpus, tmp_path):
    result = deduplicate(corpus, str(tmp_path), SERIAL)
    assert result.removed == {"web/copy-of-000": Duplicate(EXACT, "web/000"),
                              "web/edit-of-001": Duplicate(NEAR, "web/001")}
    assert result.stats["documents"] == 52 and result.stats["kept"] == 50
    assert result.stats["near_cluster_sizes"] == {2: 1}


def test_keeper_does_not_depend_on_input_order(corpus, tmp_path):
    shuffled = random.Random(0).sample(corpus, len(corpus))
    assert deduplicate(shuffled, str(tmp_path), SERIAL).removed == deduplicate(corpus, str(tmp_path), SERIAL).removed


def test_exact_duplicate_of_a_near_duplicate_leads_to_the_final_keeper(corpus, tmp_path):
    edited = corpus[-1]
    docs = corpus + [doc("web/zz-copy-of-edit", edited.text)]
    result = deduplicate(docs, str(tmp_path), SERIAL)
    assert result.removed["web/zz-copy-of-edit"] == Duplicate(EXACT, "web/edit-of-001")
    assert result.representative("web/zz-copy-of-edit") == "web/001"


@pytest.mark.parametrize("scope, kept", [(None, 1), ("source", 2), ("snapshot", 2)])
def test_duplicates_in_different_scopes_are_all_kept(distinct_docstrings, tmp_path, scope, kept):
    text = distinct_docstrings[0]
    docs = [doc("a/1", text, "a", snapshot="2024-10"), doc("b/1", text, "b", snapshot="2024-18"),
            doc("b/2", text + " more", "b", snapshot="2024-18")]  # a near-duplicate in b's scope
    result = deduplicate(docs, str(tmp_path), DedupConfig(scope=scope, num_workers=1))
    assert result.stats["kept"] == kept, result.removed


def test_missing_scope_metadata_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="web/1 has no metadata 'snapshot'"):
        deduplicate([doc("web/1", "text")], str(tmp_path), DedupConfig(scope="snapshot", num_workers=1))


def test_stages_can_be_turned_off(corpus, tmp_path):
    only_near = deduplicate(corpus, str(tmp_path), DedupConfig(exact=False, num_workers=1))
    only_exact = deduplicate(corpus, str(tmp_path), DedupConfig(near=False, num_workers=1))
    assert {d.removed for d in only_near.removed.values()} == {NEAR}  # the copy is a near-duplicate too
    assert len(only_near.removed) == 2
    assert only_exact.removed == {"web/copy-of-000": Duplicate(EXACT, "web/000")}


def test_tiny_bucket_budget_and_worker_processes_give_the_same_result(corpus, tmp_path):
    expected = deduplicate(corpus, str(tmp_path), SERIAL)
    split = deduplicate(corpus, str(tmp_path), DedupConfig(num_workers=1, num_buckets=2, max_bucket_bytes=2048))
    parallel = deduplicate(corpus, str(tmp_path), DedupConfig(num_workers=2, chunk_docs=8, pool_after_docs=16))
    assert split.removed == parallel.removed == expected.removed
    assert split.stats["bucket_files"] > 2 * 2  # 2 buckets a stage, each split on disk
    assert list(tmp_path.iterdir()) == []  # the work files are gone


def test_empty_corpus(tmp_path):
    result = deduplicate([], str(tmp_path), SERIAL)
    assert result.documents == 0 and result.removed == {}
