"""readers: every input document comes out as a Document or as a Dropped with its reason."""

import collections
import gzip
import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from fastwarc import warc

from data_prep import corpora, readers
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


# --- WARC, Parquet, zstd JSONL, TFDS: real text from the Python docs and the stdlib ---

DOCS_PAGES = ("python-3.11-docs-html/about.html", "python-3.11-docs-html/bugs.html",
              "python-3.11-docs-html/copyright.html")


@pytest.fixture(scope="module")
def docs_pages(shared_corpora):
    """Three real HTML pages of the Python docs, as text."""
    with tarfile.open(shared_corpora / "python-3.11-docs-html.tar.xz", "r:xz") as tar:
        return [tar.extractfile(name).read().decode("utf-8") for name in DOCS_PAGES]


def _warc_record(uri: str, payload: bytes, content_type: str,
                 record_type=warc.WarcRecordType.response) -> tuple[str, bytes]:
    """A record written by FastWARC's writer: its WARC-Record-ID and bytes."""
    record = warc.WarcRecord()
    record.init_headers(record_type)
    record.set_bytes_content(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n".encode() + payload)
    record.headers["WARC-Target-URI"] = uri
    record.headers["Content-Type"] = "application/http"
    out = io.BytesIO()
    record.write(out)
    return record.record_id.strip("<>"), out.getvalue()


def test_warc_keeps_html_responses_decoded_with_their_charset(tmp_path, docs_pages):
    about, bugs, copyright_page = docs_pages
    latin1 = copyright_page.encode("latin-1", "xmlcharrefreplace")
    records = [
        _warc_record("https://docs.python.org/3/about.html", about.encode(), "text/html; charset=utf-8"),
        _warc_record("https://docs.python.org/3/bugs.html", bugs.encode(), "text/html"),  # no charset: UTF-8
        _warc_record("https://docs.python.org/3/copyright.html", latin1, "text/html; charset=iso-8859-1"),
        _warc_record("https://docs.python.org/3/bad.html", b"<p>caf\xe9 \xff\xfe</p>", "text/html; charset=utf-8"),
        _warc_record("https://docs.python.org/3/_static/py.png", b"\x89PNG\r\n", "image/png"),
        _warc_record("https://docs.python.org/3/about.html", b"", "text/html", warc.WarcRecordType.request),
    ]
    (tmp_path / "crawl.warc").write_bytes(b"".join(data for _, data in records))
    results = _read(tmp_path)
    ids = [f"src/{record_id}" for record_id, _ in records]
    assert {r.id: _outcome(r) for r in results} == {  # the request record is not a document
        ids[0]: Document, ids[1]: Document, ids[2]: Document,
        ids[3]: "read:undecodable", ids[4]: "read:not_html"}
    docs = [r for r in results if isinstance(r, Document)]
    assert [d.text for d in docs] == [about, bugs, latin1.decode("latin-1")]
    assert [d.url for d in docs] == [f"https://docs.python.org/3/{p}.html" for p in ("about", "bugs", "copyright")]
    assert [d.metadata for d in docs] == [{"format": "html", "encoding": e} for e in ("utf-8", "utf-8", "iso-8859-1")]


@pytest.mark.parametrize("compress, reason", [(True, "read:truncated_gzip"), (False, "read:truncated_file")])
@pytest.mark.parametrize("cut", [0.3, 0.5, 0.77])  # inside a body, a header, anywhere
def test_truncated_warc_keeps_whole_records_and_counts_one_loss(tmp_path, stdlib_texts, compress, reason, cut):
    texts = stdlib_texts[:40]
    records = [_warc_record(f"https://example.org/{i}", t.encode(), "text/html") for i, t in enumerate(texts)]
    data = b"".join(gzip.compress(r) if compress else r for _, r in records)
    name = "crawl.warc.gz" if compress else "crawl.warc"
    (tmp_path / name).write_bytes(data[: int(len(data) * cut)])
    results = _read(tmp_path)
    kept = [r for r in results if isinstance(r, Document)]
    assert 0 < len(kept) < len(texts)
    assert [d.text for d in kept] == texts[: len(kept)]
    assert [str(r.removed) for r in results[len(kept):]] == [reason]


def test_parquet_reads_the_configured_column_and_counts_bad_rows(tmp_path, stdlib_texts):
    texts = stdlib_texts[:5] + [None, "  "]
    pq.write_table(pa.table({"content": texts, "id": [f"row{i}" for i in range(7)]}), tmp_path / "a.parquet")
    results = list(readers.read_files("src", str(tmp_path), [str(tmp_path / "a.parquet")], text_field="content"))
    assert [_outcome(r) for r in results] == [Document] * 5 + ["read:missing_text", "read:empty"]
    assert [r.text for r in results[:5]] == stdlib_texts[:5]
    assert results[0].id == "src/a.parquet:1" and results[0].metadata == {"source_id": "row0"}
    assert [_outcome(r) for r in _read(tmp_path)] == ["read:missing_text"]  # no `text` column


def test_malformed_parquet_is_counted(tmp_path, stdlib_texts):
    pq.write_table(pa.table({"text": stdlib_texts[:20]}), tmp_path / "a.parquet")
    data = (tmp_path / "a.parquet").read_bytes()
    (tmp_path / "a.parquet").write_bytes(data[: len(data) // 2])
    assert [(r.id, _outcome(r)) for r in _read(tmp_path)] == [("src/a.parquet:1", "read:malformed_parquet")]


def _jsonl_bytes(texts):
    return "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()


def test_zstd_jsonl_reads_every_frame_and_counts_a_truncation(tmp_path, stdlib_texts):
    texts = stdlib_texts[:60]
    compressor = zstandard.ZstdCompressor()
    frames = [compressor.compress(_jsonl_bytes(texts[i:i + 20])) for i in range(0, 60, 20)]
    (tmp_path / "whole.jsonl.zst").write_bytes(b"".join(frames))
    assert [r.text for r in _read(tmp_path)] == texts
    (tmp_path / "whole.jsonl.zst").write_bytes(b"".join(frames)[:-10])
    results = _read(tmp_path)
    assert [r.text for r in results[:-1]] == texts[: len(results) - 1]
    assert 40 <= len(results) - 1 < 60  # the first two frames are whole
    assert str(results[-1].removed) == "read:truncated_zstd"


def test_tfds_input_reads_a_locally_prepared_dataset(tmp_path):
    from tiny_text_dataset import DOCSTRINGS, TinyText

    TinyText(data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")
    source = corpora.resolve_input(f"docs=tfds:tiny_text/train[:2]?data_dir={tmp_path}&text=content")
    results = list(source.read())
    assert [r.id for r in results] == ["docs:0", "docs:1"]
    expected = {f"https://docs.python.org/3/library/{m}.html": __import__(m).__doc__ for m in DOCSTRINGS}
    assert all(r.text == expected[r.url] for r in results)  # Text features arrive as bytes
