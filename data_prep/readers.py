"""Input files to Documents, accounting for every document that could not be read.

A reader yields, for each document it finds, either the `Document` or a `Dropped`
that names it and says why it was lost, so the caller can check that
kept + removed = documents in. Formats by file suffix, after an optional `.gz` or
`.zst` (a file cut short counts one `truncated_*` removal after what was read):

- JSONL (`.jsonl`, `.ndjson`): one document per line, a JSON object with a string
  text field (`text` unless configured) and optional `id` and `url`. Blank lines are
  not documents.
- Parquet (`.parquet`): one document per row, columns as for JSONL.
- WARC (`.warc`): one document per `response` record with HTML content, read with
  FastWARC; the URL is WARC-Target-URI, the id the WARC-Record-ID. The payload is
  decoded with the charset its HTTP headers declare, else UTF-8.
- HTML (`.html`, `.htm`): one document per file.
- Anything else is read as one plain-text document per file.

HTML (from WARC or files) is kept as raw markup, marked with metadata
`format="html"` for the extraction stage. `read_records` reads dict records, such
as a TFDS split, the same way as JSONL objects.

Files are visited in sorted order, so ids and order are the same on every run.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import BinaryIO, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from fastwarc import warc

from data_prep.document import Document, Removed

STAGE = "read"
TEXT_FIELD = "text"  # the default field or column that holds a record's text
JSONL_SUFFIXES = (".jsonl", ".ndjson")
HTML_SUFFIXES = (".html", ".htm")
WARC_SUFFIXES = (".warc",)
PARQUET_SUFFIXES = (".parquet",)
HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
BINARY_SNIFF_BYTES = 8192  # a NUL byte in the first 8 KiB marks a binary file


class Dropped(NamedTuple):
    """A document that a stage removed: its id and the verdict."""

    id: str
    removed: Removed


Result = Document | Dropped


def list_files(path: str) -> tuple[str, list[str]]:
    """The root that ids are relative to, and every file under `path` in sorted order."""
    path = os.path.abspath(path)
    if os.path.isfile(path):
        return os.path.dirname(path), [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"input {path} is neither a file nor a folder")
    files = []
    for folder, subfolders, names in os.walk(path):
        subfolders.sort()
        files.extend(os.path.join(folder, name) for name in sorted(names))
    return path, files


def read_files(source: str, root: str, files: Sequence[str], text_field: str = TEXT_FIELD) -> Iterator[Result]:
    """Every document in `files`; ids are `source/relative-path[:line or row]`.

    `text_field` names the text in JSONL objects and Parquet columns.
    """
    for path in files:
        doc_id = f"{source}/{os.path.relpath(path, root)}"
        yield from _read_file(source, doc_id, path, text_field)


def read_records(source: str, records: Iterable[Mapping], text_field: str = TEXT_FIELD) -> Iterator[Result]:
    """Documents from dict records (a TFDS split, say); ids are `source:index`."""
    for index, record in enumerate(records):
        yield _record_document(source, f"{source}:{index}", f"{source}:{index}", record, text_field)


class Codec(NamedTuple):
    """How a compressed file is opened, and what its truncation raises and is counted as."""

    suffix: str
    open: Callable[[str], BinaryIO]
    errors: tuple[type[Exception], ...]
    truncated: str  # the removal reason for documents lost where the file is cut


def _open_zstd(path: str) -> BinaryIO:
    return io.BufferedReader(_ZstdStream(open(path, "rb")))


class _ZstdStream(io.RawIOBase):
    """Zstandard frames that raise EOFError when the file ends inside a frame.

    zstandard's own stream reader ends quietly there, which would lose documents unseen.
    """

    def __init__(self, raw: BinaryIO):
        self._raw, self._frame = raw, zstandard.ZstdDecompressor().decompressobj()
        self._pending, self._offset = b"", 0  # decompressed data not yet read, from _offset

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._offset == len(self._pending):
            data = self._raw.read(1 << 17)
            if not data:
                if not self._frame.eof:
                    raise EOFError("zstd file ended inside a frame")
                return 0
            chunks = []
            while data:  # a file may hold several frames back to back
                if self._frame.eof:
                    self._frame = zstandard.ZstdDecompressor().decompressobj()
                chunks.append(self._frame.decompress(data))
                data = self._frame.unused_data if self._frame.eof else b""
            self._pending, self._offset = b"".join(chunks), 0
        size = min(len(buffer), len(self._pending) - self._offset)
        buffer[:size] = self._pending[self._offset:self._offset + size]
        self._offset += size
        return size

    def close(self) -> None:
        self._raw.close()
        super().close()


PLAIN = Codec("", lambda path: open(path, "rb"), (), "truncated_file")
CODECS = (
    Codec(".gz", lambda path: gzip.open(path, "rb"), (EOFError, zlib.error, gzip.BadGzipFile), "truncated_gzip"),
    Codec(".zst", _open_zstd, (EOFError, zstandard.ZstdError), "truncated_zstd"),
)


def _codec(path: str) -> Codec:
    return next((c for c in CODECS if path.endswith(c.suffix)), PLAIN)


def _read_file(source: str, doc_id: str, path: str, text_field: str) -> Iterator[Result]:
    codec = _codec(path)
    inner = path[: len(path) - len(codec.suffix)].lower()
    reader = next((r for suffixes, r in _READERS if inner.endswith(suffixes)), _read_whole)
    try:
        yield from reader(source, doc_id, path, codec, text_field)
    except OSError as e:  # unreadable file: counted once, under its path
        yield Dropped(doc_id, Removed(STAGE, f"unreadable:{type(e).__name__}"))


def _read_whole(source: str, doc_id: str, path: str, codec: Codec, text_field: str) -> Iterator[Result]:
    """The whole file as one document; HTML is marked for the extraction stage."""
    try:
        with codec.open(path) as f:
            raw = f.read()
    except codec.errors:
        yield Dropped(doc_id, Removed(STAGE, codec.truncated))
        return
    if b"\0" in raw[:BINARY_SNIFF_BYTES]:
        yield Dropped(doc_id, Removed(STAGE, "binary"))
        return
    is_html = path[: len(path) - len(codec.suffix)].lower().endswith(HTML_SUFFIXES)
    yield _make_document(source, doc_id, path, raw, {"format": "html"} if is_html else {})


def _make_document(source: str, doc_id: str, url: str, raw: bytes | str, metadata: dict) -> Result:
    """The Document, or why not: text that is not UTF-8, or only whitespace."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Dropped(doc_id, Removed(STAGE, "invalid_utf8"))
    if not raw.strip():
        return Dropped(doc_id, Removed(STAGE, "empty"))
    return Document(id=doc_id, source=source, url=url, text=raw, metadata=metadata)


def _read_jsonl(source: str, file_id: str, path: str, codec: Codec, text_field: str) -> Iterator[Result]:
    line_number = 0
    try:
        with codec.open(path) as f:
            for line_number, line in enumerate(f, start=1):
                if line.strip():
                    yield _parse_json_line(source, f"{file_id}:{line_number}", f"{path}:{line_number}",
                                           line, text_field)
    except codec.errors:
        yield Dropped(f"{file_id}:{line_number + 1}", Removed(STAGE, codec.truncated))


def _parse_json_line(source: str, doc_id: str, location: str, line: bytes, text_field: str) -> Result:
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return Dropped(doc_id, Removed(STAGE, "invalid_utf8"))
    except json.JSONDecodeError:
        return Dropped(doc_id, Removed(STAGE, "malformed_json"))
    if not isinstance(record, dict):
        return Dropped(doc_id, Removed(STAGE, "malformed_json"))
    return _record_document(source, doc_id, location, record, text_field)


def _record_document(source: str, doc_id: str, location: str, record: Mapping, text_field: str) -> Result:
    """A document from a record with a text field and optional `id` and `url` fields."""
    text = record.get(text_field)
    if not isinstance(text, (str, bytes)):
        return Dropped(doc_id, Removed(STAGE, "missing_text"))
    if isinstance(text, str) and not _is_encodable(text):  # JSON can spell lone surrogates, UTF-8 cannot
        return Dropped(doc_id, Removed(STAGE, "invalid_utf8"))
    metadata = {"source_id": _as_str(record["id"])} if record.get("id") is not None else {}
    url = _as_str(record.get("url") or location)
    return _make_document(source, doc_id, url, text, metadata)


def _as_str(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_parquet(source: str, file_id: str, path: str, codec: Codec, text_field: str) -> Iterator[Result]:
    """One document per row (ids end in the 1-based row); `id` and `url` columns are kept when present."""
    row = 0
    try:
        table = pq.ParquetFile(path)
        names = table.schema_arrow.names
        if text_field not in names:
            yield Dropped(file_id, Removed(STAGE, "missing_text"))
            return
        columns = [name for name in (text_field, "id", "url") if name in names]
        for batch in table.iter_batches(columns=columns):
            for record in batch.to_pylist():
                row += 1
                yield _record_document(source, f"{file_id}:{row}", f"{path}:{row}", record, text_field)
    except (pa.ArrowException, OSError):  # pyarrow raises either for a damaged file
        yield Dropped(f"{file_id}:{row + 1}", Removed(STAGE, "malformed_parquet"))


class _EndAtBreak:
    """A decompressed stream that ends quietly where the file is cut, and remembers it.

    FastWARC reads ahead in large chunks: an exception there would also lose the
    whole records already read. `read1` returns the data before a break first.
    """

    def __init__(self, stream: BinaryIO, errors: tuple[type[Exception], ...]):
        self._stream, self._errors, self.broken, self._position = stream, errors, False, 0

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._stream.read1(size)
        except self._errors:
            self.broken, data = True, b""
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position


def _read_warc(source: str, file_id: str, path: str, codec: Codec, text_field: str) -> Iterator[Result]:
    """Response records with HTML content; ids are `source/WARC-Record-ID`, unique across crawls.

    A file cut short keeps the records before the cut and counts one removal.
    """
    with codec.open(path) as f:
        stream = _EndAtBreak(f, codec.errors)
        try:
            cut = yield from _warc_documents(source, stream)
            reason = codec.truncated if cut or stream.broken else None
        except OSError:  # a record header that FastWARC cannot parse
            reason = codec.truncated if stream.broken else "malformed_warc"
    if reason:
        yield Dropped(f"{file_id}:end", Removed(STAGE, reason))


def _warc_documents(source: str, stream: _EndAtBreak) -> Generator[Result, None, bool]:
    """The documents of a WARC stream; returns whether the stream ended inside a record."""
    for record in warc.ArchiveIterator(stream, record_types=warc.WarcRecordType.response, parse_http=False):
        block_length = record.content_length  # WARC's Content-Length: HTTP headers and body
        record.parse_http()  # content_length is now the body's
        body = record.reader.read()
        if _is_cut(record, block_length, body):
            return True
        yield _warc_document(source, f"{source}/{record.record_id.strip('<>')}", record, body)
    return False


def _is_cut(record: warc.WarcRecord, block_length: int, body: bytes) -> bool:
    """Whether the stream ends inside this record: FastWARC yields a partial record there."""
    if record.record_id is None or "Content-Length" not in record.headers:  # cut in the WARC headers
        return True
    no_http_headers = record.is_http and record.content_length == block_length  # cut before they ended
    return no_http_headers or len(body) < record.content_length


def _warc_document(source: str, doc_id: str, record: warc.WarcRecord, body: bytes) -> Result:
    if record.http_content_type not in HTML_CONTENT_TYPES:
        return Dropped(doc_id, Removed(STAGE, "not_html"))
    # The declared charset first, then UTF-8: servers often declare a wrong one.
    for encoding in dict.fromkeys((record.http_charset or "utf-8", "utf-8")):
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            continue
        url = record.headers.get("WARC-Target-URI", "")
        return _make_document(source, doc_id, url, text, {"format": "html", "encoding": encoding})
    return Dropped(doc_id, Removed(STAGE, "undecodable"))


# Readers by file suffix (after a compression suffix); anything else is one document per file.
_READERS = (
    (JSONL_SUFFIXES, _read_jsonl),
    (WARC_SUFFIXES, _read_warc),
    (PARQUET_SUFFIXES, _read_parquet),
)
