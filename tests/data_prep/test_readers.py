"""readers: every input document comes out as a Document or as a Dropped with its reason."""

import collections
import gzip
import json

import pytest

from data_prep import readers
from data_prep.document import Document


def _write_jsonl(path, lines, compress=False):
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def corpus(tmp_path):
    """A folder of every kind of input, good and bad; returns it and the expected outcome per id."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "good.txt").write_text("A plain text document.\n")
    (tmp_path / "sub" / "code.py").write_text("def f():\n    return 1\n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "blank.rst").write_text("  \n\t\n")
    (tmp_path / "page.html").write_text("<html><body><p>Hello</p></body></html>")
    _write_jsonl(tmp_path / "docs.jsonl", [
        json.dumps({"text": "first", "id": "a1", "url": "https://example.com/1"}),
        "{not json",
        json.dumps({"id": "no-text"}),
        json.dumps({"text": 42}),
        json.dumps(["a", "list"]),
        "",  # a blank line is not a document
        json.dumps({"text": "   "}),
        json.dumps({"text": "lone \ud800 surrogate"}),
    ])
    (tmp_path / "bad_line.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "\xff\xfe"}\n')
    _write_jsonl(tmp_path / "more.jsonl.gz", [json.dumps({"text": "zipped"})], compress=True)
    expected = {
        "src/good.txt": Document, "src/sub/code.py": Document, "src/latin1.txt": "read:invalid_utf8",
        "src/image.png": "read:binary", "src/empty.md": "read:empty", "src/blank.rst": "read:empty",
        "src/page.html": Document, "src/docs.jsonl:1": Document, "src/docs.jsonl:2": "read:malformed_json",
        "src/docs.jsonl:3": "read:missing_text", "src/docs.jsonl:4": "read:missing_text",
        "src/docs.jsonl:5": "read:malformed_json", "src/docs.jsonl:7": "read:empty",
        "src/docs.jsonl:8": "read:invalid_utf8", "src/bad_line.jsonl:1": Document,
        "src/bad_line.jsonl:2": "read:invalid_utf8", "src/more.jsonl.gz:1": Document,
    }
    return tmp_path, expected


def _read(folder):
    root, files = readers.list_files(str(folder))
    return list(readers.read_files("src", root, files))


def _outcome(result):
    return Document if isinstance(result, Document) else str(result.removed)


def test_every_document_is_kept_or_removed_with_its_reason(corpus):
    folder, expected = corpus
    results = _read(folder)
    assert {r.id: _outcome(r) for r in results} == expected
    assert len(results) == len(expected)  # kept + removed = input, no id twice


def test_ids_are_unique_and_the_same_on_every_run(corpus):
    folder, _ = corpus
    first, second = [r.id for r in _read(folder)], [r.id for r in _read(folder)]
    assert first == second
    assert len(set(first)) == len(first)


def test_jsonl_keeps_url_and_original_id(corpus):
    folder, _ = corpus
    doc = next(r for r in _read(folder) if r.id == "src/docs.jsonl:1")
    assert (doc.text, doc.url, doc.source) == ("first", "https://example.com/1", "src")
    assert doc.metadata == {"source_id": "a1"}


def test_html_is_marked_for_extraction_and_text_is_not(corpus):
    folder, _ = corpus
    docs = {r.id: r for r in _read(folder) if isinstance(r, Document)}
    assert docs["src/page.html"].metadata == {"format": "html"}
    assert docs["src/good.txt"].metadata == {}


def test_truncated_gzip_keeps_what_was_read_and_records_the_loss(tmp_path):
    lines = [json.dumps({"text": f"document {i} " + "x" * 50}) for i in range(2000)]
    _write_jsonl(tmp_path / "full.jsonl.gz", lines, compress=True)
    data = (tmp_path / "full.jsonl.gz").read_bytes()
    (tmp_path / "full.jsonl.gz").write_bytes(data[: len(data) // 2])
    results = _read(tmp_path)
    kept = [r for r in results if isinstance(r, Document)]
    assert 0 < len(kept) < len(lines)
    assert [d.text for d in kept] == [json.loads(line)["text"] for line in lines[: len(kept)]]
    assert [str(r.removed) for r in results[len(kept):]] == ["read:truncated_gzip"]
    assert results[-1].id == f"src/full.jsonl.gz:{len(kept) + 1}"


def test_a_single_file_input_is_read_relative_to_its_folder(corpus):
    folder, _ = corpus
    root, files = readers.list_files(str(folder / "good.txt"))
    assert [r.id for r in readers.read_files("one", root, files)] == ["one/good.txt"]


def test_a_missing_input_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a file nor a folder"):
        readers.list_files(str(tmp_path / "nowhere"))


def test_reasons_are_counted_per_reason(corpus):
    folder, expected = corpus
    counts = collections.Counter(_outcome(r) for r in _read(folder))
    assert counts["read:empty"] == 3 and counts["read:invalid_utf8"] == 3 and counts[Document] == 6
