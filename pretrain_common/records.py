"""The packed-sequence record format: the one interface between data_prep and pretrain_jax.

A prepared dataset is a folder:

    metadata.json                         this module's `DatasetMetadata`, versioned
    tokenizer.model                       the SentencePiece model that produced the tokens
    train-00000-of-00008.array_record     one record per packed sequence
    validation-00000-of-00001.array_record

With a source mixture, the train split is packed per source instead
(`train-<source>-00000-of-00002.array_record`, ...) and `DatasetMetadata.mixture`
gives each source's shards and sampling weight; `splits["train"]` still lists every
shard, so a reader that ignores the mixture sees the sources laid end to end.

Each record is exactly `seq_len` little-endian int32 token ids. Documents are laid
end to end, each followed by the end-of-document separator `eos_id`; a document
longer than the room left continues in the next record. Only the very last record
of a shard may be short, and it is filled with `PAD` (-1), a value no token has.
The reader derives segment ids and positions from the separators, so nothing
else is stored per token.

data_prep writes this format and pretrain_jax reads it; both go through this
module and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from pretrain_common.errors import ConfigError

FORMAT_VERSION = 1
PAD = -1
TOKEN_DTYPE = np.dtype("<i4")
METADATA_FILE = "metadata.json"


@dataclasses.dataclass
class SplitInfo:
    """Counts for one split; `shards` are file names relative to the dataset folder."""

    shards: list[str]
    documents: int
    sequences: int
    tokens: int  # real tokens, separators included, padding excluded

    def __add__(self, other: SplitInfo) -> SplitInfo:
        return SplitInfo(self.shards + other.shards, self.documents + other.documents,
                         self.sequences + other.sequences, self.tokens + other.tokens)


@dataclasses.dataclass
class SourceInfo(SplitInfo):
    """One source of a mixed split: its own shards, and the share of rows a reader samples from it."""

    weight: float  # the weights of a split's sources sum to 1


@dataclasses.dataclass
class DatasetMetadata:
    seq_len: int
    vocab_size: int
    eos_id: int
    bos_id: int
    tokenizer: str  # file name of the SentencePiece model, relative to the folder
    splits: dict[str, SplitInfo]
    sources: dict[str, Any] = dataclasses.field(default_factory=dict)
    # split -> source -> SourceInfo, for the splits packed per source (see the module docstring)
    mixture: dict[str, dict[str, SourceInfo]] = dataclasses.field(default_factory=dict)
    # how it was made: config, named files' hashes, inputs' identities, versions (data_prep/provenance.py)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def shard_paths(self, data_dir: str, split: str, source: str | None = None) -> list[str]:
        """The shards of `split`, or of one `source` of a mixed split."""
        if split not in self.splits:
            raise ConfigError(f"split {split!r} not in {data_dir} (have {sorted(self.splits)})")
        info = self.mixture[split][source] if source else self.splits[split]
        return [os.path.join(data_dir, name) for name in info.shards]


def normalized_weights(pairs: Iterable[tuple[str, float]], names: Iterable[str], what: str) -> dict[str, float]:
    """{name: weight / total} from `(name, weight)` pairs that name each of `names` exactly once.

    Mixture weights are written by hand in configs; a missing or misspelt source must
    fail loudly rather than silently drop out of the mix. `what` names the pairs in errors.
    """
    pairs, names = [tuple(pair) for pair in pairs], list(names)
    weights = dict(pairs)
    if len(weights) != len(pairs) or set(weights) != set(names):
        raise ConfigError(f"{what} must name each of the sources {sorted(names)} once, got {pairs}")
    if any(w < 0 for w in weights.values()) or not sum(weights.values()) > 0:
        raise ConfigError(f"{what} must be >= 0 with a positive sum, got {weights}")
    total = sum(weights.values())
    return {name: weights[name] / total for name in names}


def encode_sequence(tokens: np.ndarray, seq_len: int) -> bytes:
    """One record: `tokens` (at most `seq_len` ids) padded with PAD to `seq_len`."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or len(tokens) > seq_len or len(tokens) == 0:
        raise ValueError(f"a record holds 1..{seq_len} tokens, got shape {tokens.shape}")
    row = np.full(seq_len, PAD, dtype=TOKEN_DTYPE)
    row[: len(tokens)] = tokens
    return row.tobytes()


def decode_sequence(record: bytes) -> np.ndarray:
    return np.frombuffer(record, dtype=TOKEN_DTYPE)


def write_metadata(data_dir: str, metadata: DatasetMetadata) -> None:
    """Writes metadata.json atomically (a reader never sees half a file)."""
    path = os.path.join(data_dir, METADATA_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dataclasses.asdict(metadata), f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def read_metadata(data_dir: str) -> DatasetMetadata:
    """The metadata of a prepared dataset on a local (or mounted) filesystem."""
    if "://" in data_dir:
        raise ConfigError(f"the data folder {data_dir} is a URL, but training reads ArrayRecord shards as local "
                          "files: mount the bucket (gcsfuse: `gcsfuse --implicit-dirs BUCKET /mnt/BUCKET`) on "
                          "every host and pass the mounted path")
    path = os.path.join(data_dir, METADATA_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {data_dir} is not a prepared dataset (run `data-prep run` first)")
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not JSON ({e}): prepare the dataset again (`data-prep run` "
                          "writes it last, atomically)") from None
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        version = raw.get("format_version") if isinstance(raw, dict) else None
        raise ConfigError(f"{path} has format_version {version!r}; this code reads {FORMAT_VERSION}: prepare the "
                          "dataset again with this version of data_prep")
    _check_fields(raw, _METADATA_FIELDS, path, "")
    for split, info in raw["splits"].items():
        _check_fields(info, _SPLIT_FIELDS, path, f"splits.{split}.")
    for split, sources in raw.get("mixture", {}).items():
        _check_fields(sources, {name: dict for name in sources}, path, f"mixture.{split}.")
        for name, info in sources.items():
            _check_fields(info, {**_SPLIT_FIELDS, "weight": float}, path, f"mixture.{split}.{name}.")
    raw["splits"] = {name: SplitInfo(**info) for name, info in raw["splits"].items()}
    raw["mixture"] = {split: {name: SourceInfo(**info) for name, info in sources.items()}
                      for split, sources in raw.get("mixture", {}).items()}
    return DatasetMetadata(**raw)


# The JSON types of metadata.json's keys (DatasetMetadata); the optional ones may be missing.
_METADATA_FIELDS = {"seq_len": int, "vocab_size": int, "eos_id": int, "bos_id": int, "tokenizer": str,
                    "splits": dict, "sources": dict, "mixture": dict, "provenance": dict,
                    "format_version": int}
_OPTIONAL = ("sources", "mixture", "provenance")
_SPLIT_FIELDS = {"shards": list, "documents": int, "sequences": int, "tokens": int}
_JSON_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", dict: "an object", list: "a list"}


def _check_fields(raw: Any, fields: dict[str, type], path: str, where: str) -> None:
    """Refuses, naming the key, a metadata.json object whose keys or value types are not DatasetMetadata's:
    a hand edit or another program's file would otherwise fail later, far from its cause."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where.rstrip('.') or 'the file'} is {type(raw).__name__}, not an object: "
                          "prepare the dataset again")
    for key, kind in fields.items():
        value = raw.get(key)
        if value is None and key in _OPTIONAL:
            continue
        ok = isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool)
        if key == "shards" and ok:
            ok = all(isinstance(shard, str) for shard in value)
        if not ok:
            expected = "a list of file names" if key == "shards" else _JSON_TYPE_NAMES[kind]
            raise ConfigError(f"{path}: {where}{key} is " + ("missing" if key not in raw else repr(value))
                              + f", not {expected}: prepare the dataset again (or correct the file)")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{path}: unknown key {where}{unknown[0]}: prepare the dataset again with this version "
                          "of data_prep")
