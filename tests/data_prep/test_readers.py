"""readers: every input document comes out as a Document or as a Dropped with its reason."""

import codecs
import collections
import gzip
import io
import json
import tarfile
import tracemalloc
import zlib

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


def _read(folder, max_bytes=None):
    root, files = readers.list_files(str(folder))
    return list(readers.read_files("src", root, files, max_bytes=max_bytes))


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


def _record_bytes(record_type, uri: str, block: bytes, content_type: str) -> tuple[str, bytes]:
    """A record written by FastWARC's writer, its block exactly `block`: its WARC-Record-ID and bytes."""
    record = warc.WarcRecord()
    record.init_headers(record_type)
    record.set_bytes_content(block)
    record.headers["WARC-Target-URI"] = uri
    record.headers["Content-Type"] = content_type
    out = io.BytesIO()
    record.write(out)
    return record.record_id.strip("<>"), out.getvalue()


def _http_record(uri: str, headers: str, body: bytes, record_type=warc.WarcRecordType.response) -> tuple[str, bytes]:
    """A record of an HTTP response with these header lines and this body, as sent."""
    return _record_bytes(record_type, uri, f"HTTP/1.1 200 OK\r\n{headers}\r\n\r\n".encode() + body,
                         "application/http; msgtype=response")


def _warc_record(uri: str, payload: bytes, content_type: str,
                 record_type=warc.WarcRecordType.response) -> tuple[str, bytes]:
    return _http_record(uri, f"Content-Type: {content_type}", payload, record_type)


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
    assert {r.id: _outcome(r) for r in results} == {  # the request record is not a document
        "src/crawl.warc:1": Document, "src/crawl.warc:2": Document, "src/crawl.warc:3": Document,
        "src/crawl.warc:4": "read:undecodable", "src/crawl.warc:5": "read:not_text"}
    docs = [r for r in results if isinstance(r, Document)]
    assert [d.text for d in docs] == [about, bugs, latin1.decode("latin-1")]
    assert [d.url for d in docs] == [f"https://docs.python.org/3/{p}.html" for p in ("about", "bugs", "copyright")]
    assert [d.metadata for d in docs] == [{"format": "html", "encoding": e, "source_id": record_id}
                                          for e, (record_id, _) in zip(("utf-8", "utf-8", "iso-8859-1"), records)]


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


@pytest.mark.parametrize("charset", ["none", "utf8mb4", "utf-8, iso-8859-1", "undefined"])
def test_a_charset_python_does_not_know_falls_back_to_utf8(tmp_path, charset):
    """Common Crawl declares these often: they must neither stop the run nor lose a UTF-8 page."""
    content_type = f"text/html; charset={charset}"
    records = [_warc_record("https://example.org/utf8", "<p>café</p>".encode(), content_type),
               _warc_record("https://example.org/latin1", "<p>café</p>".encode("latin-1"), content_type)]
    (tmp_path / "crawl.warc").write_bytes(b"".join(data for _, data in records))
    results = _read(tmp_path)
    assert [_outcome(r) for r in results] == [Document, "read:undecodable"]
    assert (results[0].text, results[0].metadata["encoding"]) == ("<p>café</p>", "utf-8")


def test_a_quoted_charset_is_honoured(tmp_path):
    _, data = _warc_record("https://example.org/", "<p>café</p>".encode("latin-1"), 'text/html; charset="ISO-8859-1"')
    (tmp_path / "crawl.warc").write_bytes(data)
    [doc] = _read(tmp_path)
    assert (doc.text, doc.metadata["encoding"]) == ("<p>café</p>", "iso-8859-1")


def test_copies_of_a_warc_file_give_distinct_ids(tmp_path, docs_pages):
    """Dedup looks verdicts up by id: equal ids for two copies would remove both (or crash Beam)."""
    data = b"".join(_warc_record(f"https://docs.python.org/3/{i}.html", page.encode(), "text/html")[1]
                    for i, page in enumerate(docs_pages[:2]))
    (tmp_path / "a.warc").write_bytes(data)
    (tmp_path / "b.warc").write_bytes(data)
    (tmp_path / "twice.warc").write_bytes(data + data)  # the same records again in one file
    ids = [r.id for r in _read(tmp_path)]
    assert ids == ["src/a.warc:1", "src/a.warc:2", "src/b.warc:1", "src/b.warc:2",
                   "src/twice.warc:1", "src/twice.warc:2", "src/twice.warc:3", "src/twice.warc:4"]


def _wet_records(texts: list[str]) -> list[bytes]:
    """Common Crawl's WET layout: a warcinfo record, then one text/plain conversion record per page."""
    info = _record_bytes(warc.WarcRecordType.warcinfo, "", b"software: test\r\n", "application/warc-fields")
    pages = [_record_bytes(warc.WarcRecordType.conversion, f"https://example.org/{i}", text.encode(), "text/plain")
             for i, text in enumerate(texts)]
    return [data for _, data in [info, *pages]]


@pytest.mark.parametrize("name", ["crawl.warc.wet.gz", "crawl.wet", "crawl.warc.gz", "crawl.warc"])
def test_wet_conversion_records_are_text_documents(tmp_path, stdlib_texts, name):
    """WET is a WARC of conversion records: one text document per page, whatever the file is called."""
    texts = stdlib_texts[:5]
    records = _wet_records(texts)
    compress = gzip.compress if name.endswith(".gz") else bytes  # Common Crawl gzips each record
    (tmp_path / name).write_bytes(b"".join(compress(record) for record in records))
    results = _read(tmp_path)
    assert [r.id for r in results] == [f"src/{name}:{position}" for position in range(2, 7)]  # 1 is warcinfo
    assert [r.text for r in results] == texts
    assert [r.url for r in results] == [f"https://example.org/{i}" for i in range(5)]
    assert {r.metadata["format"] for r in results} == {"text"}


def test_warc_reads_every_record_that_holds_a_document(tmp_path, docs_pages):
    """Response, resource and conversion records are documents; the others hold none and are not counted."""
    page = docs_pages[0].encode()
    _, segmented = _warc_record("https://example.org/big", page, "text/html")
    segmented = segmented.replace(b"WARC-Type: response\r\n", b"WARC-Type: response\r\nWARC-Segment-Number: 1\r\n")
    records = [
        _warc_record("https://example.org/", page, "text/html", warc.WarcRecordType.request)[1],
        _warc_record("https://example.org/", page, "text/html")[1],
        _record_bytes(warc.WarcRecordType.metadata, "https://example.org/", b"via: x", "application/warc-fields")[1],
        _record_bytes(warc.WarcRecordType.resource, "file:///page.html", page, "text/html")[1],
        _record_bytes(warc.WarcRecordType.conversion, "https://example.org/", b"plain words", "text/plain")[1],
        _record_bytes(warc.WarcRecordType.revisit, "https://example.org/", b"", "application/http")[1],
        segmented,
    ]
    (tmp_path / "crawl.warc").write_bytes(b"".join(records))
    assert [(r.id, _outcome(r)) for r in _read(tmp_path)] == [
        ("src/crawl.warc:2", Document), ("src/crawl.warc:4", Document), ("src/crawl.warc:5", Document),
        ("src/crawl.warc:7", "read:segmented")]  # its continuation records would not be read


PAGE = b"<p>Hello, world</p>"
CHUNKED_PAGE = b"7\r\n<p>Hell\r\nc\r\no, world</p>\r\n0\r\n\r\n"  # 7 + 12 bytes, then the last chunk


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("headers, body", [
    ("Transfer-Encoding: chunked", CHUNKED_PAGE),
    ("Content-Encoding: gzip", gzip.compress(PAGE)),
    ("Content-Encoding: x-gzip", gzip.compress(PAGE)),
    ("Content-Encoding: deflate", zlib.compress(PAGE)),
    ("Content-Encoding: deflate", _raw_deflate(PAGE)),  # what many servers send as deflate
    ("Content-Encoding: zstd", zstandard.ZstdCompressor().compress(PAGE)),
    ("Content-Encoding: gzip\r\nTransfer-Encoding: chunked", _chunked(gzip.compress(PAGE))),
    ("Content-Encoding: identity", PAGE),
])
def test_warc_bodies_are_read_without_their_http_codings(tmp_path, headers, body):
    _, data = _http_record("https://example.org/", f"Content-Type: text/html\r\n{headers}", body)
    (tmp_path / "crawl.warc").write_bytes(data)
    [doc] = _read(tmp_path)
    assert doc.text == PAGE.decode()


@pytest.mark.parametrize("headers, body", [
    ("Content-Encoding: br", b"\x1b\x12\x00\xf8"),  # brotli: not decoded
    ("Content-Encoding: gzip", b"\x1f\x8b\x08\x00 not gzip data"),
    ("Content-Encoding: compress", PAGE),
    ("Transfer-Encoding: chunked", b"zz\r\n" + PAGE),
    ("Transfer-Encoding: chunked", CHUNKED_PAGE[:20]),  # cut short
    # A chunk extension (RFC 9112 7.1.1): FastWARC 2.0's chunked decoder refuses it.
    ("Transfer-Encoding: chunked", CHUNKED_PAGE.replace(b"c\r\n", b"c;note=x\r\n")),
])
def test_a_body_that_does_not_decode_is_counted_and_reading_goes_on(tmp_path, headers, body):
    records = [_http_record("https://example.org/bad", f"Content-Type: text/html\r\n{headers}", body)[1],
               _http_record("https://example.org/good", "Content-Type: text/html", PAGE)[1]]
    (tmp_path / "crawl.warc").write_bytes(b"".join(records))
    assert [_outcome(r) for r in _read(tmp_path)] == ["read:undecodable", Document]


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


@pytest.mark.parametrize("name", ["shard.json.gz", "shard.json.zst", "shard.json", "shard.ndjson"])
def test_dolma_shards_are_json_lines(tmp_path, stdlib_texts, name):
    texts = stdlib_texts[:5]
    lines = b"".join(json.dumps({"id": f"doc{i}", "text": text, "source": "stdlib", "metadata": {"n": i}}).encode()
                     + b"\n" for i, text in enumerate(texts))
    compress = {".gz": gzip.compress, ".zst": zstandard.ZstdCompressor().compress}.get(name[name.rfind("."):], bytes)
    (tmp_path / name).write_bytes(compress(lines))
    results = _read(tmp_path)
    assert [r.text for r in results] == texts
    assert [(r.id, r.metadata) for r in results[:1]] == [(f"src/{name}:1", {"source_id": "doc0"})]


@pytest.mark.parametrize("value, indent", [
    ([{"text": "one"}, {"text": "two"}], None), ([{"text": "one"}, {"text": "two"}], 2), ({"text": "one"}, 2)])
def test_a_json_file_that_holds_one_value_is_counted_once(tmp_path, value, indent):
    """Not JSON lines: one removal for the file, rather than a malformed line per line (or a silent keep)."""
    (tmp_path / "data.json").write_text(json.dumps(value, indent=indent))
    assert [(r.id, _outcome(r)) for r in _read(tmp_path)] == [("src/data.json", "read:not_json_lines")]


def test_a_utf8_bom_does_not_spoil_the_first_json_line(tmp_path):
    (tmp_path / "bom.jsonl").write_bytes(codecs.BOM_UTF8 + _jsonl_bytes(["first", "second"]))
    assert [r.text for r in _read(tmp_path)] == ["first", "second"]


def test_tfds_input_reads_a_locally_prepared_dataset(tmp_path):
    from tiny_text_dataset import DOCSTRINGS, TinyText

    TinyText(data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")
    source = corpora.resolve_input(f"docs=tfds:tiny_text/train[:2]?data_dir={tmp_path}&text=content")
    results = list(source.read())
    assert [r.id for r in results] == ["docs:0", "docs:1"]
    expected = {f"https://docs.python.org/3/library/{m}.html": __import__(m).__doc__ for m in DOCSTRINGS}
    assert all(r.text == expected[r.url] for r in results)  # Text features arrive as bytes


# --- max_bytes: a document over the limit is removed, and a huge one is never held whole ---

LIMIT = 100_000
HUGE = 50_000_000  # bytes: 500 times the limit


def _peak_bytes(read) -> tuple[list, int]:
    """What `read()` returns, and the most memory Python held while it ran."""
    tracemalloc.start()
    try:
        return read(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def huge_text(stdlib_texts) -> bytes:
    """HUGE bytes of real text (stdlib sources over and over): it compresses as a corpus does."""
    text = "".join(stdlib_texts).encode()
    return (text * (HUGE // len(text) + 1))[:HUGE]


@pytest.mark.parametrize("name, compress", [
    ("huge.txt", bytes), ("huge.html.gz", lambda data: gzip.compress(data, compresslevel=1)),
    ("huge.md.zst", zstandard.ZstdCompressor().compress)])
def test_an_oversized_file_is_removed_without_being_read_whole(tmp_path, huge_text, name, compress):
    (tmp_path / name).write_bytes(compress(huge_text))
    (tmp_path / "small.txt").write_bytes(b"x" * LIMIT)  # exactly at the limit
    results, peak = _peak_bytes(lambda: _read(tmp_path, max_bytes=LIMIT))
    assert [(r.id, _outcome(r)) for r in results] == [(f"src/{name}", "read:too_large"), ("src/small.txt", Document)]
    assert peak < HUGE // 10


def test_an_oversized_json_line_is_removed_and_reading_goes_on(tmp_path):
    texts = ["before", "x" * HUGE, "é" * (LIMIT // 2 - 1), "y" * (LIMIT + 1), "after"]
    # ensure_ascii spells "é" as 6 bytes: that line is 3 times the limit, its text just under it.
    (tmp_path / "docs.jsonl.gz").write_bytes(gzip.compress(_jsonl_bytes(texts)))
    results, peak = _peak_bytes(lambda: _read(tmp_path, max_bytes=LIMIT))
    assert [_outcome(r) for r in results] == [Document, "read:too_large", Document, "read:too_large", Document]
    assert [r.id for r in results] == [f"src/docs.jsonl.gz:{line}" for line in range(1, 6)]
    assert peak < 20 * readers.STORED_BYTES_PER_TEXT_BYTE * LIMIT


def test_an_oversized_warc_payload_is_removed_unheld(tmp_path):
    huge_page = b"<p>" + b"words " * (HUGE // 6) + b"</p>"
    records = [_http_record("https://example.org/huge", "Content-Type: text/html", huge_page)[1],
               _http_record("https://example.org/bomb", "Content-Type: text/html\r\nContent-Encoding: gzip",
                            gzip.compress(huge_page))[1],
               _http_record("https://example.org/small", "Content-Type: text/html", PAGE)[1]]
    (tmp_path / "crawl.warc").write_bytes(b"".join(records))
    results, peak = _peak_bytes(lambda: _read(tmp_path, max_bytes=LIMIT))
    assert [_outcome(r) for r in results] == ["read:too_large", "read:too_large", Document]
    assert peak < 20 * readers.STORED_BYTES_PER_TEXT_BYTE * LIMIT


def test_tfds_records_over_the_limit_are_removed():
    results = list(readers.read_records("tfds", [{"text": "x" * (LIMIT + 1)}, {"text": "ok"}], max_bytes=LIMIT))
    assert [_outcome(r) for r in results] == ["read:too_large", Document]
