"""Input files to Documents, accounting for every document that could not be read.

A reader yields, for each document it finds, either the `Document` or a `Dropped`
that names it and says why it was lost, so the caller can check that
kept + removed = documents in. Formats by file suffix, after an optional `.gz` or
`.zst` (a file cut short counts one `truncated_*` removal after what was read):

- JSON lines (`.jsonl`, `.ndjson`, `.json`: Dolma's shards are `.json.gz`): one
  document per line, a JSON object with a string text field (`text` unless
  configured) and optional `id` and `url`. Blank lines are not documents; a UTF-8
  BOM is ignored. A `.json` file whose first line is not a whole object (a JSON
  array, or one object over several lines) is not JSON lines: counted once, as
  `not_json_lines`. A line nested deeper than MAX_JSON_DEPTH is `json_too_deep`.
- Parquet (`.parquet`): one document per row, columns as for JSONL.
- WARC (`.warc`) and WET (`.wet`, `.warc.wet`): one document per `response`,
  `resource` or `conversion` (WET) record with HTML or plain-text content, read
  with FastWARC; the URL is WARC-Target-URI. HTTP transfer and content codings
  (chunked by FastWARC's decoder, gzip, deflate, zstd) are undone, then the payload is
  decoded with the charset its headers declare, else (or when Python does not know it) UTF-8.
- HTML (`.html`, `.htm`): one document per file.
- Anything else is read as one plain-text document per file (code corpora: `.py`,
  `.md`, ...).

HTML (from WARC or files) is kept as raw markup, marked with metadata
`format="html"` for the extraction stage; WARC plain text is marked `format="text"`.
`read_records` reads dict records, such as a TFDS split, the same way as JSONL objects.

Documents over `max_bytes` of UTF-8 are removed as `too_large`, and a reader refuses
one before holding it whole: a file by its size, a JSON line or WARC payload once it
passes STORED_BYTES_PER_TEXT_BYTE times the limit. Compressed files are decompressed a
bounded piece per read (gzip by its reader's size argument, zstd as `_ZstdStream` says),
so memory follows the limit, not the compression ratio.

Files are visited in sorted order, so ids and order are the same on every run. An
entry of an input folder that is not a regular file is never opened: a FIFO, socket or
device is one `not_regular_file` removal, a link to nothing `dangling_link`, a link to a
folder `linked_folder` (not followed).
"""

from __future__ import annotations

import codecs
import email.message
import gzip
import io
import json
import os
import stat
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from fastwarc import stream_io, warc

from data_prep.document import Document, Dropped, Removed, Result

STAGE = "read"
TEXT_FIELD = "text"  # the default field or column that holds a record's text
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
HTML_SUFFIXES = (".html", ".htm")
WARC_SUFFIXES = (".warc", ".wet")
PARQUET_SUFFIXES = (".parquet",)
HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_CONTENT_TYPES = HTML_CONTENT_TYPES | {"text/plain"}  # what a WARC record must hold to be read
DOCUMENT_RECORDS = warc.WarcRecordType.response | warc.WarcRecordType.resource | warc.WarcRecordType.conversion
BINARY_SNIFF_BYTES = 8192  # a NUL byte in the first 8 KiB marks a binary file
# The most bytes a document can take, stored, per byte of its text in UTF-8: a JSON
# escape such as \u0001 is 6 bytes for 1 (UTF-16 is 2, UTF-32 4). JSON lines and WARC
# payloads past this many times max_bytes are too large before they are decoded.
STORED_BYTES_PER_TEXT_BYTE = 6
SKIP_CHUNK = 1 << 20  # bytes read at a time while skipping the rest of a line too long to hold
# A JSON line whose arrays and objects nest deeper is removed (json_too_deep). json.loads recurses
# once per level and fails at Python's recursion limit (1,000 frames) less its caller's stack, which
# differs between runners: below that, this limit decides, the same way everywhere. Dolma records
# nest a few levels.
MAX_JSON_DEPTH = 256
ZSTD_INPUT_BYTES = 128  # compressed bytes per zstd decompress call: its output is at most 4 MiB (see _ZstdStream)


def list_files(path: str) -> tuple[str, list[str]]:
    """The root that ids are relative to, and every entry under `path` that is not a folder, in sorted order.

    Links to folders are entries, not followed (a link can loop, or lead out of the
    input); they, dangling links and special files are listed so that the reader
    counts them (see `not_read`).
    """
    path = os.path.abspath(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        return os.path.dirname(path), [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"input {path} is neither a file nor a folder")
    files = []
    for folder, subfolders, names in os.walk(path):
        links = {name for name in subfolders if os.path.islink(os.path.join(folder, name))}
        subfolders[:] = sorted(set(subfolders) - links)
        files.extend(os.path.join(folder, name) for name in sorted([*names, *links]))
    return path, files


def not_read(path: str) -> str | None:
    """Why the entry at `path` is not opened, from its stat alone; None for a regular file (or a link to one).

    A FIFO would block the reader forever and a device may never end: anything but a
    regular file is `not_regular_file`; a link to nothing (or to itself) is `dangling_link`.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "dangling_link" if os.path.islink(path) else None  # else opening it reports why
    if stat.S_ISREG(mode):
        return None
    return "linked_folder" if stat.S_ISDIR(mode) else "not_regular_file"


def read_files(source: str, root: str, files: Sequence[str], text_field: str = TEXT_FIELD,
               max_bytes: int | None = None) -> Iterator[Result]:
    """Every document in `files`; ids are `source/relative-path[:line, row or WARC record]`.

    `text_field` names the text in JSONL objects and Parquet columns; documents over
    `max_bytes` of UTF-8 (None: no limit) are removed as too_large.
    """
    for path in files:
        doc_id = f"{source}/{os.path.relpath(path, root)}"
        yield from _size_checked(_read_file(source, doc_id, path, text_field, max_bytes), max_bytes)


def read_records(source: str, records: Iterable[Mapping], text_field: str = TEXT_FIELD,
                 max_bytes: int | None = None) -> Iterator[Result]:
    """Documents from dict records (a TFDS split, say); ids are `source:index`."""
    documents = (record_document(source, f"{source}:{index}", f"{source}:{index}", record, text_field)
                 for index, record in enumerate(records))
    return _size_checked(documents, max_bytes)


def _size_checked(results: Iterable[Result], max_bytes: int | None) -> Iterator[Result]:
    """Each result, a document over `max_bytes` of UTF-8 turned into a too_large removal."""
    for result in results:
        if max_bytes is not None and isinstance(result, Document) and len(result.text.encode("utf-8")) > max_bytes:
            result = _too_large(result.id)
        yield result


def _too_large(doc_id: str) -> Dropped:
    return Dropped(doc_id, Removed(STAGE, "too_large"))


def _stored_limit(max_bytes: int | None) -> int | None:
    """The most bytes a JSON line or WARC payload may hold and still be read (see STORED_BYTES_PER_TEXT_BYTE)."""
    return None if max_bytes is None else STORED_BYTES_PER_TEXT_BYTE * max_bytes


class Codec(NamedTuple):
    """How a compressed file is opened, and what its truncation raises and is counted as."""

    suffix: str
    open: Callable[[str], BinaryIO]
    errors: tuple[type[Exception], ...]
    truncated: str  # the removal reason for documents lost where the file is cut


def _open_zstd(path: str) -> BinaryIO:
    return io.BufferedReader(_ZstdStream(open(path, "rb")))


class _ZstdStream(io.RawIOBase):
    """Zstandard frames, decompressed a few bytes at a time; EOFError when the file ends inside a frame.

    zstandard's own stream reader ends quietly there, which would lose documents unseen.
    Its decompressobj has no output cap, so it is fed ZSTD_INPUT_BYTES at a time: a
    block yields at most 128 KiB and takes at least 4 bytes, so one call yields at most
    4 MiB, whatever the ratio (a 32 KB file can hold 1 GiB) or the number of frames.
    """

    def __init__(self, raw: BinaryIO):
        self._raw, self._frame = raw, zstandard.ZstdDecompressor().decompressobj()
        self._input = memoryview(b"")  # compressed data read from the file, not yet decompressed
        self._pending, self._offset = b"", 0  # decompressed data not yet read, from _offset

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._offset == len(self._pending):
            if not self._input:
                self._input = memoryview(self._raw.read(1 << 17))
                if not self._input:
                    if not self._frame.eof:
                        raise EOFError("zstd file ended inside a frame")
                    return 0
            self._pending, self._offset = self._decompress_some(), 0
        size = min(len(buffer), len(self._pending) - self._offset)
        buffer[:size] = self._pending[self._offset:self._offset + size]
        self._offset += size
        return size

    def _decompress_some(self) -> bytes:
        """The output of the next ZSTD_INPUT_BYTES of input; a file may hold several frames back to back."""
        if self._frame.eof:
            self._frame = zstandard.ZstdDecompressor().decompressobj()
        data = self._input[:ZSTD_INPUT_BYTES]
        output = self._frame.decompress(data)
        used = len(data) - len(self._frame.unused_data) if self._frame.eof else len(data)  # the rest: next frame
        self._input = self._input[used:]
        return output

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


def _format_name(path: str, codec: Codec) -> str:
    """The lower-case path without its compression suffix, whose own suffix names the format."""
    return path[: len(path) - len(codec.suffix)].lower()


def _read_file(source: str, doc_id: str, path: str, text_field: str, max_bytes: int | None) -> Iterator[Result]:
    if reason := not_read(path):
        yield Dropped(doc_id, Removed(STAGE, reason))
        return
    codec = _codec(path)
    name = _format_name(path, codec)
    reader = next((r for suffixes, r in _READERS if name.endswith(suffixes)), read_whole)
    try:
        yield from reader(source, doc_id, path, codec, text_field, max_bytes)
    except OSError as e:  # unreadable file: counted once, under its path
        yield Dropped(doc_id, Removed(STAGE, f"unreadable:{type(e).__name__}"))


def read_whole(source: str, doc_id: str, path: str, codec: Codec, text_field: str,
                max_bytes: int | None) -> Iterator[Result]:
    """The whole file as one document; HTML is marked for the extraction stage.

    At most `max_bytes` + 1 bytes are read: the file's bytes are its text's UTF-8.
    """
    try:
        with codec.open(path) as f:
            raw = f.read(-1 if max_bytes is None else max_bytes + 1)
    except codec.errors:
        yield Dropped(doc_id, Removed(STAGE, codec.truncated))
        return
    if b"\0" in raw[:BINARY_SNIFF_BYTES]:
        yield Dropped(doc_id, Removed(STAGE, "binary"))
    elif max_bytes is not None and len(raw) > max_bytes:
        yield _too_large(doc_id)
    else:
        is_html = _format_name(path, codec).endswith(HTML_SUFFIXES)
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


def _read_jsonl(source: str, file_id: str, path: str, codec: Codec, text_field: str,
                max_bytes: int | None) -> Iterator[Result]:
    """One document per line; ids end in the 1-based line number.

    A `.json` file may instead hold one JSON value over many lines; one whose first
    line is not a whole object is counted once (not_json_lines), not line by line.
    """
    line_number = 0
    check_first = _format_name(path, codec).endswith(".json")
    try:
        with codec.open(path) as f:
            for line_number, line in enumerate(_lines(f, _stored_limit(max_bytes)), start=1):
                if line is None:
                    yield _too_large(f"{file_id}:{line_number}")
                    continue
                if not line.strip():
                    continue
                if check_first and not _is_one_line_object(line):
                    yield Dropped(file_id, Removed(STAGE, "not_json_lines"))
                    return
                check_first = False
                yield _parse_json_line(source, f"{file_id}:{line_number}", f"{path}:{line_number}", line, text_field)
    except codec.errors:
        yield Dropped(f"{file_id}:{line_number + 1}", Removed(STAGE, codec.truncated))


def _lines(f: BinaryIO, limit: int | None) -> Iterator[bytes | None]:
    """The lines of `f`, a UTF-8 BOM at its start removed; None for a line over `limit` bytes, skipped unheld."""
    size = -1 if limit is None else limit + 1  # one byte more than a line may hold shows it is too long
    line = f.readline(size).removeprefix(codecs.BOM_UTF8)
    while line:
        if len(line) == size and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = f.readline(SKIP_CHUNK)
            yield None
        else:
            yield line
        line = f.readline(size)


def _is_one_line_object(line: bytes) -> bool:
    """Whether a line can be a whole JSON object: what the first line of JSON lines must be."""
    line = line.strip()
    return line.startswith(b"{") and line.endswith(b"}")


def json_object(line: bytes) -> dict | Removed:
    """The JSON object a line holds, or why it holds none (invalid_utf8, malformed_json, json_too_deep)."""
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return Removed(STAGE, "invalid_utf8")
    except json.JSONDecodeError:
        return Removed(STAGE, "malformed_json")
    except RecursionError:  # deeper than Python's recursion limit, less the caller's stack
        return Removed(STAGE, "json_too_deep")
    if line.count(b"[") + line.count(b"{") > MAX_JSON_DEPTH and _nests_deeper(record, MAX_JSON_DEPTH):
        return Removed(STAGE, "json_too_deep")
    return record if isinstance(record, dict) else Removed(STAGE, "malformed_json")


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether lists and dicts in a parsed JSON value nest deeper than `limit`; walked with a stack of
    iterators, so neither recursion nor memory grows with the value's width."""
    stack = [iter([value])]
    while stack:
        item = next(stack[-1], stack)  # the stack itself marks an exhausted iterator
        if item is stack:
            stack.pop()
        elif isinstance(item, (list, dict)):
            if len(stack) > limit:
                return True
            stack.append(iter(item.values() if isinstance(item, dict) else item))
    return False


def _parse_json_line(source: str, doc_id: str, location: str, line: bytes, text_field: str) -> Result:
    record = json_object(line)
    if isinstance(record, Removed):
        return Dropped(doc_id, record)
    return record_document(source, doc_id, location, record, text_field)


def record_document(source: str, doc_id: str, location: str, record: Mapping, text_field: str) -> Result:
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


def _read_parquet(source: str, file_id: str, path: str, codec: Codec, text_field: str,
                  max_bytes: int | None) -> Iterator[Result]:
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
                yield record_document(source, f"{file_id}:{row}", f"{path}:{row}", record, text_field)
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


def _read_warc(source: str, file_id: str, path: str, codec: Codec, text_field: str,
               max_bytes: int | None) -> Iterator[Result]:
    """Response, resource and conversion (WET) records; ids end in the record's 1-based position in the file.

    Positions, unlike WARC-Record-IDs (kept as metadata `source_id`), differ between
    copies of a file. Request, metadata, warcinfo, revisit (a pointer to an earlier
    capture) and continuation records hold no document of their own and are not
    counted; a segmented record, whose continuations are not read, is removed as
    `segmented`. A file cut short keeps the records before the cut and counts one removal.
    """
    with codec.open(path) as f:
        stream = _EndAtBreak(f, codec.errors)
        try:
            cut = yield from _warc_documents(source, file_id, stream, _stored_limit(max_bytes))
            reason = codec.truncated if cut or stream.broken else None
        except OSError:  # a record header that FastWARC cannot parse
            reason = codec.truncated if stream.broken else "malformed_warc"
    if reason:
        yield Dropped(f"{file_id}:end", Removed(STAGE, reason))


def _warc_documents(source: str, file_id: str, stream: _EndAtBreak,
                    limit: int | None) -> Generator[Result, None, bool]:
    """The documents of a WARC stream; returns whether the stream ended inside a record."""
    for position, record in enumerate(warc.ArchiveIterator(stream, parse_http=False), start=1):
        is_document = bool(record.record_type & DOCUMENT_RECORDS)
        payload, cut = _payload(record, limit if is_document else 0)  # others: only checked for a cut
        if cut:
            return True
        if is_document:
            yield _warc_document(source, f"{file_id}:{position}", record, payload, limit)
    return False


def _payload(record: warc.WarcRecord, limit: int | None) -> tuple[bytes | None, bool]:
    """The record's payload (an HTTP body as sent), None when the record is over `limit` bytes (skipped
    unheld), and whether the stream ends inside the record: FastWARC yields a partial record there."""
    if record.record_id is None or "Content-Length" not in record.headers:  # cut in the WARC headers
        return None, True
    block_length = record.content_length  # WARC's Content-Length: HTTP headers and body
    if limit is not None and block_length > limit:
        return None, record.consume() < block_length
    record.freeze()  # reads the block: content_length is now what the stream held of it
    if record.content_length < block_length:
        return None, True
    record.parse_http(quirks_mode=True)  # quirks: header lines ended by LF alone, common in crawls
    return record.reader.read(), False


def _warc_document(source: str, doc_id: str, record: warc.WarcRecord, payload: bytes | None,
                   limit: int | None) -> Result:
    """The record's HTML or plain text, or why not; `payload` is None when it was too large to hold."""
    if payload is None:
        return _too_large(doc_id)
    media_type, charset = _content_type(record)
    if media_type not in TEXT_CONTENT_TYPES:
        return Dropped(doc_id, Removed(STAGE, "not_text"))
    if "WARC-Segment-Number" in record.headers:
        return Dropped(doc_id, Removed(STAGE, "segmented"))
    try:
        payload = _http_decoded(record, payload, limit)
    except (ValueError, OSError, zlib.error, zstandard.ZstdError):
        return Dropped(doc_id, Removed(STAGE, "undecodable"))
    if limit is not None and len(payload) > limit:
        return _too_large(doc_id)
    # The declared charset first, then UTF-8: servers often declare a wrong one, or one that Python
    # does not know (`none`, `utf8mb4`, `utf-8, iso-8859-1`).
    for encoding in dict.fromkeys((charset or "utf-8", "utf-8")):
        try:
            text = payload.decode(encoding)
        except (LookupError, ValueError):  # an unknown codec; UnicodeDecodeError is a ValueError
            continue
        metadata = {"format": "html" if media_type in HTML_CONTENT_TYPES else "text", "encoding": encoding,
                    "source_id": record.record_id.strip("<>")}
        return _make_document(source, doc_id, record.headers.get("WARC-Target-URI", ""), text, metadata)
    return Dropped(doc_id, Removed(STAGE, "undecodable"))


def _content_type(record: warc.WarcRecord) -> tuple[str, str | None]:
    """The payload's media type and declared charset, from the HTTP headers of an HTTP record, else from
    the record's own (resource and conversion records; WET's text/plain when it declares none)."""
    value = record.http_headers.get("Content-Type") if record.is_http else record.headers.get("Content-Type")
    if value is None:
        return ("", None) if record.is_http else ("text/plain", None)
    header = email.message.Message()  # parses parameters as HTTP does, quoted or not
    header["Content-Type"] = value
    is_valid = "/" in value.partition(";")[0]  # email would read a malformed type as text/plain
    return header.get_content_type() if is_valid else value, header.get_content_charset()


def _http_decoded(record: warc.WarcRecord, payload: bytes, limit: int | None) -> bytes:
    """The payload with its HTTP content and transfer codings undone, the last applied first
    (RFC 9110 8.4, RFC 9112 7); each decoder returns at most `limit` + 1 bytes.

    Raises ValueError for an unknown coding (brotli among them), OSError for a malformed or cut
    chunked body, zlib.error or ZstdError for damaged data.
    """
    if not record.is_http:
        return payload
    codings = [coding.strip().lower() for name in ("Content-Encoding", "Transfer-Encoding")
               for coding in (record.http_headers.get(name) or "").split(",") if coding.strip()]
    for coding in reversed(codings):
        if coding not in _HTTP_DECODERS:
            raise ValueError(f"unknown HTTP coding {coding!r}")
        payload = _HTTP_DECODERS[coding](payload, limit)
    return payload


def _unchunked(data: bytes, limit: int | None) -> bytes:
    """The data of a chunked body (RFC 9112 7.1), by FastWARC's decoder. It raises OSError for a
    body cut short and for chunk extensions (`7;name=value`), which servers rarely send."""
    return stream_io.ChunkedReader(io.BytesIO(data)).read(-1 if limit is None else limit + 1)


def _inflated(data: bytes, limit: int | None) -> bytes:
    """gzip or zlib data, or raw deflate (which servers also send as `deflate`)."""
    try:
        return zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(data, _max_length(limit))  # either header
    except zlib.error:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, _max_length(limit))


def _unzstd(data: bytes, limit: int | None) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(data).read(-1 if limit is None else limit + 1)


def _max_length(limit: int | None) -> int:
    """zlib's `max_length` that shows a payload is over `limit` (0: all)."""
    return 0 if limit is None else limit + 1


_HTTP_DECODERS: dict[str, Callable[[bytes, int | None], bytes]] = {
    "identity": lambda data, limit: data, "chunked": _unchunked,
    "gzip": _inflated, "x-gzip": _inflated, "deflate": _inflated, "zstd": _unzstd,
}

# Readers by file suffix (after a compression suffix); anything else is one document per file.
_READERS = (
    (JSONL_SUFFIXES, _read_jsonl),
    (WARC_SUFFIXES, _read_warc),
    (PARQUET_SUFFIXES, _read_parquet),
)
