"""The local driver's near-duplicate clusters, split across worker processes by bucket and by node.

    bucket files -> (a worker per file) star edges, mapped to exact keepers, verified, by node hash
      -> partitions of edges -> rounds of large-star / small-star, a worker per partition,
         until every component is a star -> each centre's cluster

No process holds the edge graph or one union-find over it: a worker loads one bucket
file, or one partition's edges (about a 1/partitions share). Nodes are the documents'
ranks by id, so a component's centre (its smallest node) is its keeper (the smallest
id), as `clusters.keeper` picks it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import glob
import itertools
import os
import shutil
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from data_prep import workers
from data_prep.dedup import components, minhash
from data_prep.dedup.buckets import scan
from data_prep.dedup.hashing import mix64

Rule = Callable[[int, Sequence[int]], list[components.Edge]]


@dataclasses.dataclass(frozen=True)
class Graph:
    """Where a worker finds its inputs: files in `folder`, edges in `partitions` partitions, signatures."""

    folder: str
    signatures: str  # [documents, num_perm] uint32
    partitions: int
    num_perm: int
    verify_threshold: float | None
    max_bucket_bytes: int

    def array(self, name: str) -> np.ndarray:
        """One of the per-document arrays the driver saved (memory-mapped: workers share the pages)."""
        return np.load(os.path.join(self.folder, f"{name}.npy"), mmap_mode="r")


def near_clusters(bucket_paths: Sequence[str], keepers: np.ndarray, ids: Sequence[str],
                  graph: Graph, num_workers: int) -> tuple[list[list[int]], dict[str, int]]:
    """Clusters (document indices, each sorted, ordered by their smallest) of the near-duplicate edges in
    `bucket_paths`; `keepers[i]` is the document that stands for i (another after exact dedup).

    Returns them and the counts: candidate and verified edges, bucket files loaded, rounds.
    """
    order = np.array(sorted(range(len(ids)), key=ids.__getitem__), np.int64)  # rank -> index; ties by index
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    os.makedirs(graph.folder, exist_ok=True)
    np.save(os.path.join(graph.folder, "keeper.npy"), keepers)
    np.save(os.path.join(graph.folder, "rank.npy"), rank)
    with _executor(num_workers) as executor:
        found = list(executor.map(functools.partial(_bucket_edges, graph=graph), bucket_paths))
        counts = dict(zip(("candidate_edges", "verified_edges", "bucket_files"), np.sum(found, axis=0).tolist()))
        src = "edges"
        for counts["rounds"] in itertools.count():
            stars = list(executor.map(functools.partial(_round, graph=graph, src=src, dst="large",
                                                        rule=components.large_star), range(graph.partitions)))
            if all(stars):  # every partition has finished: all() alone would stop at the first False
                break
            shutil.rmtree(os.path.join(graph.folder, src))
            src = f"round-{counts['rounds'] + 1}"
            list(executor.map(functools.partial(_round, graph=graph, src="large", dst=src, rule=components.small_star),
                              range(graph.partitions)))
            shutil.rmtree(os.path.join(graph.folder, "large"))
        centred = executor.map(functools.partial(_clusters, graph=graph, src=src), range(graph.partitions))
        clusters = sorted((order[cluster] for part in centred for cluster in part), key=lambda c: c.min())
    return [sorted(c.tolist()) for c in clusters], counts


def _executor(num_workers: int) -> concurrent.futures.Executor:
    """Worker processes; in this one when one worker would do, saving a process start."""
    return workers.pool(num_workers, "spawn") if num_workers > 1 else concurrent.futures.ThreadPoolExecutor(1)


def _bucket_edges(path: str, graph: Graph) -> tuple[int, int, int]:
    """One bucket file's verified edges, between keepers' ranks, into the partitions' files.

    Returns the candidate edges (between distinct keepers), the verified ones and the files loaded.
    """
    keeper, rank = graph.array("keeper"), graph.array("rank")
    candidate = verified = loaded = 0
    for edges in scan(path, graph.max_bucket_bytes):
        edges = keeper[edges]  # an exact duplicate stands for the document it duplicates
        edges = edges[edges[:, 0] != edges[:, 1]]
        candidate += len(edges)
        if graph.verify_threshold is not None and len(edges):
            sigs = np.memmap(graph.signatures, np.uint32, "r").reshape(-1, graph.num_perm)
            edges = edges[minhash.estimated_jaccard(sigs, edges) >= graph.verify_threshold]
        verified += len(edges)
        _write(rank[edges], graph, "edges", f"{os.path.basename(path)}-{loaded}")
        loaded += 1
    return candidate, verified, loaded


def _write(edges: np.ndarray, graph: Graph, dst: str, name: str) -> None:
    """Files undirected edges [m, 2] under both ends: dst/name-<partition of the end>.bin, rows (end, other)."""
    both = np.concatenate([edges, edges[:, ::-1]]).astype(np.int64)
    part = mix64(both[:, 0].astype(np.uint64)) % np.uint64(graph.partitions)
    os.makedirs(os.path.join(graph.folder, dst), exist_ok=True)
    for index in np.unique(part).tolist():
        both[part == index].tofile(os.path.join(graph.folder, dst, f"{name}-p{index:04d}.bin"))


def _neighbourhoods(graph: Graph, src: str, partition: int) -> Iterator[tuple[int, list[int]]]:
    """(node, its neighbours in order) for every node of one partition."""
    paths = sorted(glob.glob(os.path.join(graph.folder, src, f"*-p{partition:04d}.bin")))
    edges = np.concatenate([np.fromfile(path, np.int64) for path in paths] or [np.empty(0, np.int64)])
    edges = np.unique(edges.reshape(-1, 2), axis=0)  # sorted by node, then neighbour
    starts = np.flatnonzero(np.diff(edges[:, 0], prepend=-1))
    for node, neighbours in zip(edges[starts, 0].tolist(), np.split(edges[:, 1], starts[1:])):
        yield node, neighbours.tolist()


def _round(partition: int, graph: Graph, src: str, dst: str, rule: Rule) -> bool:
    """Applies a rule to one partition's nodes, filing its edges under `dst` for the next round.

    Returns whether `src` was a star at every node here: where that holds in every
    partition, the components are `src`'s stars.
    """
    stars, edges = True, []
    for node, neighbours in _neighbourhoods(graph, src, partition):
        stars &= components.is_star(node, neighbours)
        edges += rule(node, neighbours)
    _write(np.array(edges, np.int64).reshape(-1, 2), graph, dst, f"{partition:04d}")
    return stars


def _clusters(partition: int, graph: Graph, src: str) -> list[list[int]]:
    """The clusters (ranks) centred in one partition, once `src` is stars."""
    return [cluster for node, neighbours in _neighbourhoods(graph, src, partition)
            if (cluster := components.star_cluster(node, neighbours))]
