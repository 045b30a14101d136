"""Corpus deduplication: exact (normalized-text hash), then MinHash near-duplicates.

`deduplicate(documents, workdir, DedupConfig())` is the local driver; the pieces it
is built from (`normalize`, `minhash.signatures`, `minhash.band_keys`,
`buckets.DiskBuckets`, `components`) are pure or file-local, so a
distributed runner can call them per shard.
"""

from data_prep.dedup.corpus import CLUSTER_SIZE, DedupConfig, DedupResult, Duplicate, deduplicate

__all__ = ["CLUSTER_SIZE", "DedupConfig", "DedupResult", "Duplicate", "deduplicate"]
