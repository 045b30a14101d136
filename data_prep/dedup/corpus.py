"""Deduplicating a corpus: exact, then near-duplicate, one document kept per group.

    documents -> normalize -> content hash + MinHash signature (all cores)
      -> keys into disk buckets -> equal keys -> edges
      -> exact: union-find -> groups; near: components split across processes (see `sharded`)
      -> keep the smallest id of each cluster

Dedup is a corpus-level stage: no document's verdict is known until all are read.
One streaming pass writes the per-document keys and signatures to `workdir`;
the groups are then found bucket by bucket (see `buckets`). What stays in memory
is each document's id and the duplicated documents' sets, not the corpus or an
LSH index over it.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from data_prep import workers
from data_prep.dedup import exact, minhash, sharded
from data_prep.dedup.buckets import DiskBuckets
from data_prep.dedup.clusters import clusters_from_edges, keeper, size_histogram
from data_prep.dedup.hashing import hash64
from data_prep.dedup.normalize import NGRAM, normalize_words
from data_prep.document import Document, Removed

# Metadata key of a kept document: how many documents it stands for (itself, the duplicates
# removed in its favour and, after an earlier dedup stage, theirs): FineWeb-2's minhash_cluster_size,
# which the upsample stage reads. Absent: 1.
CLUSTER_SIZE = "cluster_size"


@dataclasses.dataclass(frozen=True)
class DedupConfig:
    """Every dedup setting, defaulting to FineWeb's recipe except where a comment says."""

    exact: bool = True  # remove exact duplicates (of the normalized text) first
    near: bool = True  # then remove MinHash near-duplicates
    # None: one scope for the whole corpus; "source": per Document.source; else a
    # metadata key (FineWeb dedups each crawl snapshot on its own). Duplicates in
    # different scopes are all kept.
    scope: str | None = None
    ngram: int = NGRAM
    bands: int = minhash.BANDS
    rows: int = minhash.ROWS
    seed: int = minhash.SEED
    # Candidate pairs whose signatures agree on fewer than this fraction of values are
    # dropped (about the LSH threshold for 14 x 8); None keeps every candidate, as
    # FineWeb does. Verifying costs one signature comparison per candidate and stops
    # a single chance band collision from merging two clusters.
    verify_threshold: float | None = 0.72
    # Large-star / small-star rounds unrolled in the Beam graph (fixed before it runs; the local
    # driver loops until done): edges not yet stars after them meet in one union-find on one worker.
    component_rounds: int = 6
    num_buckets: int = 64  # bucket files written in the first pass
    max_bucket_bytes: int = 256 << 20  # a larger bucket file is split before it is loaded
    num_workers: int | None = None  # processes for signatures and near clusters (edge partitions); None: every core
    # Worker processes start only after this many documents: each spends about 1.5 s
    # importing datasketch (which imports scipy), more than small corpora take in-process.
    pool_after_docs: int = 20_000
    chunk_docs: int = 256  # documents per task sent to a worker

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


class Duplicate(NamedTuple):
    """Why a document was removed, and the id of the document kept in its place."""

    removed: Removed
    kept_id: str


@dataclasses.dataclass
class DedupResult:
    """The verdict for every document: `removed` lists the removed ones, all others are kept.

    A document removed as an exact duplicate names the exact stage's keeper, which
    the near stage may in turn have removed in favour of another.
    """

    documents: int
    removed: dict[str, Duplicate]
    stats: dict
    cluster_sizes: dict[str, int] = dataclasses.field(default_factory=dict)  # kept id -> CLUSTER_SIZE, of keepers

    def representative(self, doc_id: str) -> str:
        """The kept document that stands for `doc_id` in the output (itself when kept)."""
        while doc_id in self.removed:
            doc_id = self.removed[doc_id].kept_id
        return doc_id


def deduplicate(docs: Iterable[Document], workdir: str, config: DedupConfig = DedupConfig()) -> DedupResult:
    """Reads `docs` once and decides which to keep (see the module docstring).

    `workdir` holds the bucket files and signatures while this runs, about
    24 x (bands + 1) + 4 x num_perm bytes per document (0.8 KB at the defaults).
    """
    seconds = {}
    start = time.time()
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="dedup-") as work:
        exact_buckets = _buckets(work, "exact", config) if config.exact else None
        near_buckets = _buckets(work, "near", config) if config.near else None
        sig_path = os.path.join(work, "signatures.u32")
        progress = tqdm(docs, desc="dedup: fingerprint", unit=" docs", mininterval=1)  # total: len(docs), if known
        ids, sizes = _write_keys(progress, config, exact_buckets, near_buckets, sig_path)
        seconds["fingerprint"] = time.time() - start
        removed: dict[int, tuple[Removed, int]] = {}
        exact_groups = _exact_stage(exact_buckets, ids, removed) if exact_buckets else []
        seconds["exact"] = time.time() - start - sum(seconds.values())
        near_clusters, near = _near_stage(near_buckets, sig_path, ids, config, removed) if near_buckets else ([], {})
        seconds["near"] = time.time() - start - sum(seconds.values())
    seconds["total"] = time.time() - start
    reasons = collections.Counter(str(reason) for reason, _ in removed.values())
    stats = {"documents": len(ids), "kept": len(ids) - len(removed), "removed": dict(sorted(reasons.items())),
             "exact_groups": len(exact_groups), "near_clusters": len(near_clusters),
             "near_cluster_sizes": size_histogram(near_clusters), **near,
             "bucket_files": (exact_buckets.files_scanned if exact_buckets else 0) + near.get("bucket_files", 0),
             "seconds": seconds}
    verdicts = {ids[i]: Duplicate(reason, ids[kept]) for i, (reason, kept) in sorted(removed.items())}
    return DedupResult(len(ids), verdicts, stats, _cluster_sizes(removed, sizes, ids))


def _cluster_sizes(removed: dict[int, tuple[Removed, int]], sizes: dict[int, int], ids: Sequence[str]
                   ) -> dict[str, int]:
    """Each keeper's CLUSTER_SIZE: the sizes of the documents it stands for, its own included (absent: 1)."""
    totals = collections.Counter()
    for index in removed:
        kept = index
        while kept in removed:  # an exact duplicate's keeper may be a near duplicate in turn
            kept = removed[kept][1]
        totals[kept] += sizes.get(index, 1)
    return {ids[kept]: sizes.get(kept, 1) + total for kept, total in sorted(totals.items())}


def _buckets(work: str, stage: str, config: DedupConfig) -> DiskBuckets:
    return DiskBuckets(os.path.join(work, stage), config.num_buckets, config.max_bucket_bytes)


def _write_keys(docs: Iterable[Document], config: DedupConfig, exact_buckets: DiskBuckets | None,
                near_buckets: DiskBuckets | None, sig_path: str) -> tuple[list[str], dict[int, int]]:
    """The one pass over the documents: their keys into the buckets, signatures to `sig_path`.

    Returns the ids, and the CLUSTER_SIZE of those an earlier dedup stage gave one, by index.
    """
    ids: list[str] = []
    sizes: dict[int, int] = {}
    bands = np.arange(config.bands, dtype=np.uint64)
    with open(sig_path, "wb") as sig_file:
        for chunk, (content, sigs) in _fingerprints(docs, config):
            index = np.arange(len(ids), len(ids) + len(chunk), dtype=np.uint64)
            sizes.update((len(ids) + i, doc.metadata[CLUSTER_SIZE]) for i, doc in enumerate(chunk)
                         if CLUSTER_SIZE in doc.metadata)
            ids.extend(doc.id for doc in chunk)
            scope = np.array([hash64(_scope_of(doc, config.scope)) for doc in chunk], np.uint64)
            if exact_buckets:
                exact_buckets.add(content[:, 0] ^ scope, content[:, 1], index)
            if near_buckets:
                # The band's index is part of its key: equal values in different bands mean nothing.
                near_buckets.add((scope[:, None] + bands).ravel(),
                                 minhash.band_keys(sigs, config.bands, config.rows).ravel(),
                                 np.repeat(index, config.bands))
                sigs.tofile(sig_file)
    return ids, sizes


def _scope_of(doc: Document, scope: str | None) -> str:
    if scope is None:
        return ""
    if scope == "source":
        return doc.source
    if scope not in doc.metadata:
        raise ValueError(f"document {doc.id} has no metadata {scope!r} to scope deduplication by")
    return str(doc.metadata[scope])


def _fingerprint(texts: list[str], config: DedupConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Content keys and signatures of one chunk of texts (run in a worker process)."""
    words = [normalize_words(text) for text in texts]
    content = exact.content_keys(words) if config.exact else None
    sigs = minhash.signatures(words, config.num_perm, config.ngram, config.seed) if config.near else None
    return content, sigs


def _fingerprints(docs: Iterable[Document], config: DedupConfig) -> Iterator[tuple[list[Document], tuple]]:
    """(chunk, its fingerprints) in input order: in-process up to `pool_after_docs`, then by `num_workers` processes.

    At most two chunks per worker are in flight, so memory stays bounded however
    long the input (`Pool.imap` would read the whole input ahead).
    """
    doc_iter = iter(docs)
    chunks = iter(lambda: list(itertools.islice(doc_iter, config.chunk_docs)), [])
    num_workers = config.num_workers or len(os.sched_getaffinity(0))
    serial = itertools.islice(chunks, -(-config.pool_after_docs // config.chunk_docs)) if num_workers > 1 else chunks
    yield from ((chunk, _fingerprint([d.text for d in chunk], config)) for chunk in serial)
    if (first := next(chunks, None)) is None:
        return
    submitted: collections.deque = collections.deque()  # the chunks whose texts went to the workers, in order

    def texts() -> Iterator[list[str]]:
        for chunk in itertools.chain([first], chunks):
            submitted.append(chunk)
            yield [d.text for d in chunk]

    with workers.pool(num_workers, "spawn") as pool:
        for fingerprints in workers.ordered(pool, functools.partial(_fingerprint, config=config), texts(),
                                            2 * num_workers):
            yield submitted.popleft(), fingerprints


def _exact_stage(buckets: DiskBuckets, ids: Sequence[str], removed: dict[int, tuple[Removed, int]]) -> list[list[int]]:
    """Groups of identical normalized texts; all but each group's keeper go into `removed`."""
    groups = clusters_from_edges(buckets.edges("dedup: exact groups"))
    _remove_all_but_keepers(groups, ids, exact.REMOVED, removed)
    return groups


def _near_stage(buckets: DiskBuckets, sig_path: str, ids: Sequence[str], config: DedupConfig,
                removed: dict[int, tuple[Removed, int]]) -> tuple[list[list[int]], dict[str, int]]:
    """Clusters of near-duplicates among the documents the exact stage kept, found by `num_workers`
    processes (in this one up to `pool_after_docs`), each holding a share of the edges (see `sharded`)."""
    keepers = np.arange(len(ids), dtype=np.int64)  # an exact duplicate stands for the document it duplicates
    keepers[list(removed)] = [kept for _, kept in removed.values()]
    num_workers = config.num_workers or len(os.sched_getaffinity(0))
    graph = sharded.Graph(os.path.join(os.path.dirname(sig_path), "near-graph"), sig_path, num_workers,
                          config.num_perm, config.verify_threshold, config.max_bucket_bytes)
    clusters, counts = sharded.near_clusters(buckets.close(), keepers, ids, graph,
                                             num_workers if len(ids) > config.pool_after_docs else 1)
    _remove_all_but_keepers(clusters, ids, minhash.REMOVED, removed)
    return clusters, counts


def _remove_all_but_keepers(clusters: list[list[int]], ids: Sequence[str], reason: Removed,
                            removed: dict[int, tuple[Removed, int]]) -> None:
    for cluster in clusters:
        kept = keeper(cluster, ids)
        removed.update((i, (reason, kept)) for i in cluster if i != kept)
