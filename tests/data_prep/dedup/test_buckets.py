"""Equal keys are found on disk, bucket by bucket, the same whatever the memory budget."""

import numpy as np

from data_prep.dedup.buckets import RECORD, DiskBuckets, star_edges


def records(keys, docs):
    out = np.empty(len(docs), RECORD)
    out["k0"], out["k1"], out["doc"] = [k[0] for k in keys], [k[1] for k in keys], docs
    return out


def test_star_edges_join_each_run_to_its_smallest_document():
    keys = [(0, 5), (1, 5), (0, 5), (0, 5), (2, 9)]  # (0, 5) thrice; (1, 5) differs in k0
    assert star_edges(records(keys, [7, 3, 4, 2, 1])).tolist() == [[2, 4], [2, 7]]


def scan(folder, max_bucket_bytes, k0, k1, doc):
    buckets = DiskBuckets(str(folder), num_buckets=4, max_bucket_bytes=max_bucket_bytes)
    for start in range(0, len(doc), 1000):  # added in chunks, as the driver does
        buckets.add(k0[start:start + 1000], k1[start:start + 1000], doc[start:start + 1000])
    edges = np.concatenate(list(buckets.edges()))
    return sorted(map(tuple, edges.tolist())), buckets.files_scanned


def test_tiny_bucket_budget_splits_buckets_on_disk_and_finds_the_same_edges(tmp_path):
    rng = np.random.default_rng(0)
    n = 20_000
    k1 = rng.integers(0, 3000, n, dtype=np.uint64)  # about 7 documents per key
    k0 = rng.integers(0, 2, n, dtype=np.uint64)
    doc = np.arange(n, dtype=np.uint64)
    in_memory, files = scan(tmp_path / "one", 1 << 30, k0, k1, doc)
    split, split_files = scan(tmp_path / "split", 4096, k0, k1, doc)  # 170 records a file
    assert files == 4
    assert split_files > 4 * 16  # 120 KB buckets split into 16, then again
    assert split == in_memory
    assert len(in_memory) == n - len(set(zip(k0.tolist(), k1.tolist())))
    assert not list((tmp_path / "split").rglob("*.bin"))  # scanned files are deleted
