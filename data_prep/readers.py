"""Input files to Documents, accounting for every document that could not be read.

A reader yields, for each document it finds, either the `Document` or a `Dropped`
that names it and says why it was lost, so the caller can check that
kept + removed = documents in. Three formats, chosen by file suffix (after an
optional `.gz`):

- JSONL (`.jsonl`, `.ndjson`): one document per line, a JSON object with a string
  `text` field and optional `id` and `url`. Blank lines are not documents.
- HTML (`.html`, `.htm`): one document per file; its text is the raw markup, marked
  with metadata `format="html"` for the extraction stage.
- Anything else is read as one plain-text document per file.

Files are visited in sorted order, so ids and order are the same on every run.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from data_prep.document import Document, Removed

STAGE = "read"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
HTML_SUFFIXES = (".html", ".htm")
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


def read_files(source: str, root: str, files: Sequence[str]) -> Iterator[Result]:
    """Every document in `files`; ids are `source/relative-path[:line]`."""
    for path in files:
        doc_id = f"{source}/{os.path.relpath(path, root)}"
        yield from _read_file(source, doc_id, path)


def _read_file(source: str, doc_id: str, path: str) -> Iterator[Result]:
    inner = path[:-3] if path.endswith(".gz") else path
    try:
        if inner.lower().endswith(JSONL_SUFFIXES):
            yield from _read_jsonl(source, doc_id, path)
        else:
            yield _read_whole(source, doc_id, path, is_html=inner.lower().endswith(HTML_SUFFIXES))
    except OSError as e:  # unreadable file: counted once, under its path
        yield Dropped(doc_id, Removed(STAGE, f"unreadable:{type(e).__name__}"))


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _read_whole(source: str, doc_id: str, path: str, is_html: bool) -> Result:
    try:
        with _open(path) as f:
            raw = f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return Dropped(doc_id, Removed(STAGE, "truncated_gzip"))
    if b"\0" in raw[:BINARY_SNIFF_BYTES]:
        return Dropped(doc_id, Removed(STAGE, "binary"))
    metadata = {"format": "html"} if is_html else {}
    return _make_document(source, doc_id, path, raw, metadata)


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


def _read_jsonl(source: str, file_id: str, path: str) -> Iterator[Result]:
    line_number = 0
    try:
        with _open(path) as f:
            for line_number, line in enumerate(f, start=1):
                if line.strip():
                    yield _parse_json_line(source, f"{file_id}:{line_number}", f"{path}:{line_number}", line)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        yield Dropped(f"{file_id}:{line_number + 1}", Removed(STAGE, "truncated_gzip"))


def _parse_json_line(source: str, doc_id: str, location: str, line: bytes) -> Result:
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return Dropped(doc_id, Removed(STAGE, "invalid_utf8"))
    except json.JSONDecodeError:
        return Dropped(doc_id, Removed(STAGE, "malformed_json"))
    if not isinstance(record, dict):
        return Dropped(doc_id, Removed(STAGE, "malformed_json"))
    if not isinstance(record.get("text"), str):
        return Dropped(doc_id, Removed(STAGE, "missing_text"))
    if not _is_encodable(record["text"]):  # JSON can spell lone surrogates, UTF-8 cannot
        return Dropped(doc_id, Removed(STAGE, "invalid_utf8"))
    metadata = {"source_id": str(record["id"])} if "id" in record else {}
    url = str(record.get("url") or location)
    return _make_document(source, doc_id, url, record["text"], metadata)


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
