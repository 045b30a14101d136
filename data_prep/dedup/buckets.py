"""Finding records with equal keys among more records than fit in memory.

Both dedup stages reduce to one question: which documents share a key (a content
hash, or one LSH band of a MinHash signature)? An in-memory index answers it only
while the corpus fits in RAM. Here the (key, document) records are instead
hash-partitioned into bucket files as they are produced; equal keys always land in
the same file, so each file can be loaded, sorted and scanned on its own. A file
larger than `max_bucket_bytes` is partitioned again, by other bits of the key,
before it is loaded: memory holds one bucket at a time, whatever the corpus size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from data_prep.dedup.hashing import mix64

# A key is two uint64 words (k0, k1); doc is the document's index in the corpus.
RECORD = np.dtype([("k0", "<u8"), ("k1", "<u8"), ("doc", "<u8")])
SPLIT_FANOUT = 16  # sub-buckets per oversized bucket
MAX_LEVEL = 4  # a bucket still too large after 4 splits is one run of equal keys: it cannot shrink


class DiskBuckets:
    """Records (k0, k1, doc) partitioned into `num_buckets` files under `folder`.

    Add records with `add`; then `edges` yields, one bucket at a time, an edge from
    the first (smallest) document of every run of equal keys to each other document
    in the run. The connected components of the edges are the groups of documents
    sharing a key; a star per run keeps the edge count linear in the run length.
    """

    def __init__(self, folder: str, num_buckets: int, max_bucket_bytes: int, level: int = 0):
        os.makedirs(folder, exist_ok=True)
        self.paths = [os.path.join(folder, f"bucket-{i:05d}.bin") for i in range(num_buckets)]
        self._files = [open(path, "wb") for path in self.paths]
        self.max_bucket_bytes = max_bucket_bytes
        self.level = level
        self.files_scanned = 0  # bucket files loaded into memory, sub-buckets included

    def add(self, k0: np.ndarray, k1: np.ndarray, doc: np.ndarray) -> None:
        """Appends records; the three arrays are uint64 of one length."""
        records = np.empty(len(doc), RECORD)
        records["k0"], records["k1"], records["doc"] = k0, k1, doc
        self._add_records(records)

    def _add_records(self, records: np.ndarray) -> None:
        # The level salts the hash, so a split uses bits of the key that its parent did not.
        bucket = mix64(records["k0"] ^ records["k1"] ^ np.uint64(self.level)) % np.uint64(len(self.paths))
        order = np.argsort(bucket, kind="stable")
        starts = np.searchsorted(bucket[order], np.arange(len(self.paths) + 1))
        for index, (start, end) in enumerate(zip(starts[:-1], starts[1:])):
            if end > start:
                records[order[start:end]].tofile(self._files[index])

    def close(self) -> list[str]:
        """Ends adding; returns the bucket files, for `scan` to read one by one (in any process)."""
        for f in self._files:
            f.close()
        return self.paths

    def edges(self, progress: str | None = None) -> Iterator[np.ndarray]:
        """Star edges [m, 2] (run head, other member) of every run of equal keys, bucket by bucket.

        With `progress`, a progress bar of that label counts the buckets scanned.
        """
        for path in tqdm(self.close(), desc=progress, unit=" buckets", mininterval=1, disable=progress is None):
            for edges in scan(path, self.max_bucket_bytes, self.level):
                self.files_scanned += 1
                yield edges


def scan(path: str, max_bucket_bytes: int, level: int = 0) -> Iterator[np.ndarray]:
    """Star edges of one bucket file, one array per file loaded (split first if larger than
    `max_bucket_bytes`); removes the file."""
    if os.path.getsize(path) <= max_bucket_bytes or level >= MAX_LEVEL:
        yield star_edges(np.fromfile(path, RECORD))
    else:
        split = DiskBuckets(path + ".split", SPLIT_FANOUT, max_bucket_bytes, level + 1)
        chunk = max(1, max_bucket_bytes // RECORD.itemsize)
        with open(path, "rb") as f:
            while len(records := np.fromfile(f, RECORD, count=chunk)):
                split._add_records(records)
        yield from split.edges()
        os.rmdir(path + ".split")
    os.remove(path)


def star_edges(records: np.ndarray) -> np.ndarray:
    """Edges [m, 2] int64 from the smallest document of each run of equal (k0, k1) to each other one."""
    records = records[np.lexsort((records["doc"], records["k1"], records["k0"]))]
    new_run = np.ones(len(records), bool)
    new_run[1:] = (records["k0"][1:] != records["k0"][:-1]) | (records["k1"][1:] != records["k1"][:-1])
    head = np.maximum.accumulate(np.where(new_run, np.arange(len(records)), 0))
    docs = records["doc"].astype(np.int64)
    return np.stack([docs[head], docs], axis=1)[~new_run]
