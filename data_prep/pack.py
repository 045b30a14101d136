"""Token streams to fixed-length records, and records to ArrayRecord shards (format: records.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from array_record.python.array_record_module import ArrayRecordWriter

from pretrain_common import records

WRITER_OPTIONS = "group_size:1"  # one record per chunk: random access to any sequence


@dataclasses.dataclass
class PackStats:
    documents: int = 0
    sequences: int = 0
    tokens: int = 0  # real tokens, separators included, padding excluded

    def __add__(self, other: PackStats) -> PackStats:
        return PackStats(self.documents + other.documents, self.sequences + other.sequences,
                         self.tokens + other.tokens)


def pack(docs: Iterable[np.ndarray], seq_len: int) -> Iterator[np.ndarray]:
    """Sequences of exactly `seq_len` tokens cut from the documents laid end to end.

    Each document already ends with its separator. A document that does not fit in
    the room left continues at the start of the next sequence. Only the last
    sequence may be shorter; it is padded when written.
    """
    pending: list[np.ndarray] = []
    num_pending = 0
    for doc in docs:
        pending.append(doc)
        num_pending += len(doc)
        if num_pending >= seq_len:
            flat = np.concatenate(pending)
            num_full = len(flat) // seq_len * seq_len
            yield from flat[:num_full].reshape(-1, seq_len)
            pending, num_pending = [flat[num_full:]], len(flat) - num_full
    if num_pending:
        yield np.concatenate(pending)


def write_shard(path: str, docs: Iterable[np.ndarray], seq_len: int, stats_path: str | None = None) -> PackStats:
    """Packs `docs` into one shard at `path`, which appears only once complete.

    `stats_path` gets the stats as JSON before the shard appears: a shard that
    exists has its stats, so a resumed run can skip it (see prepare.py).
    """
    stats = PackStats()

    def counted(docs: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for doc in docs:
            stats.documents += 1
            yield doc

    tmp = path + ".tmp"
    try:
        writer = ArrayRecordWriter(tmp, WRITER_OPTIONS)
        try:
            for sequence in pack(counted(docs), seq_len):
                _checked(writer.write, records.encode_sequence(sequence, seq_len))
                stats.sequences += 1
                stats.tokens += len(sequence)
        finally:
            _checked(writer.close)  # closing writes the last chunk: a full disk may fail it here
        if stats_path:
            with open(stats_path, "w", encoding="utf-8") as f:
                json.dump(dataclasses.asdict(stats), f)
    except BaseException:  # no partial shard stays behind, even under a temporary name, to fill the disk
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)
    return stats


def _checked(operation: Callable[..., None], *args: Any) -> None:
    """A writer's write or close; array_record's RuntimeError for a failed write (disk full, quota, file size
    limit) is raised as the OSError it is."""
    try:
        operation(*args)
    except RuntimeError as error:
        raise OSError(str(error)) from None


def read_stats(stats_path: str) -> PackStats:
    with open(stats_path, encoding="utf-8") as f:
        return PackStats(**json.load(f))


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}.array_record"
