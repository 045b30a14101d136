"""Deduplication as Beam shuffles: the same keys, keepers and clusters as `deduplicate`, spread over workers.

    exact:   (order, doc) -> content key -> GroupByKey -> all but the smallest id removed
    MinHash: (order, doc) -> signature -> one record per band -> GroupByKey on (band, band hash)
             -> star edges from the first document of each group, verified by Jaccard
             -> connected components (large-star / small-star rounds) -> all but the smallest id removed

Both yield verdicts, (removed id, Duplicate), and one record per cluster: its keeper,
members, earliest removed member (for the report) and CLUSTER_SIZE (for the keeper).
Keys, signatures, the edge rule (the earliest document of a run of equal keys to each
other one), verification and the keeper are those of the local driver (corpus.py), so
both runners remove the same documents and give the same sizes.

Connected components: rounds of large-star / small-star (`components`), each a
GroupByKey on the node, so a worker holds one node's neighbours at a time, never the
graph. A Beam graph is fixed before it runs, so the rounds are unrolled
(`DedupConfig.component_rounds`); if the edges are not yet stars after them, the
remaining edges are joined by one union-find combine on a single worker (the old
bound: one entry per document with a near-duplicate) rather than giving wrong clusters.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np

from data_prep.beam_combine import Accumulate
from data_prep.dedup import components as star_rules
from data_prep.dedup import exact, minhash
from data_prep.dedup.clusters import LARGEST_CLUSTERS, UnionFind
from data_prep.dedup.corpus import CLUSTER_SIZE, DedupConfig, Duplicate, _fingerprint, _scope_of
from data_prep.dedup.hashing import hash64
from data_prep.document import Document, Removed

Order = tuple[int, ...]  # a document's place in the input: (source index, file index, position)
# A document in the union-find: its id first, so the smallest node is the keeper; its CLUSTER_SIZE last.
Node = tuple[str, Order, int]
FINGERPRINT_BATCH = 256  # documents per signature batch (MinHash.bulk hashes a batch at once)


class ExactDuplicates(beam.PTransform):
    """(order, doc) -> (verdicts, clusters): documents whose normalized text equals a smaller id's."""

    def __init__(self, config: DedupConfig):
        super().__init__()
        self.config = config

    def expand(self, docs):
        groups = (docs | "ContentKey" >> beam.FlatMap(_content_keys, self.config)
                  | "SameContent" >> beam.GroupByKey())
        return _verdicts(groups | "Members" >> beam.MapTuple(lambda key, members: list(members)), exact.REMOVED)


class NearDuplicates(beam.PTransform):
    """(order, doc) -> (verdicts, clusters): MinHash near-duplicate clusters, all but the smallest id removed."""

    def __init__(self, config: DedupConfig):
        super().__init__()
        self.config = config

    def expand(self, docs):
        edges = (docs
                 | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=FINGERPRINT_BATCH)
                 | "BandKeys" >> beam.FlatMap(_band_records, self.config)
                 | "SameBand" >> beam.GroupByKey()
                 | "VerifiedEdges" >> beam.FlatMap(_star_edges, self.config.verify_threshold))
        return _verdicts(edges | "Components" >> Components(self.config.component_rounds), minhash.REMOVED)


class Components(beam.PTransform):
    """(node, node) edges -> clusters (lists of nodes, the smallest first), over `rounds` rounds (module docstring)."""

    def __init__(self, rounds: int):
        super().__init__()
        self.rounds = rounds

    def expand(self, edges):
        edges = edges | "BothEnds" >> beam.FlatMap(_both_ends)
        for index in range(self.rounds):
            for rule in (star_rules.large_star, star_rules.small_star):
                edges = (edges | f"{rule.__name__}{index}" >> beam.GroupByKey()
                         | f"{rule.__name__}{index}Edges" >> beam.FlatMap(_apply, rule))
        nodes = edges | "ByNode" >> beam.GroupByKey() | "Neighbours" >> beam.MapTuple(_neighbours)
        stars = beam.pvalue.AsSingleton(nodes | "IsStar" >> beam.MapTuple(star_rules.is_star)
                                        | "Stars" >> beam.CombineGlobally(all))
        centred = nodes | "Centred" >> beam.FlatMap(_centred, stars)
        rest = (edges | "NotStars" >> beam.Filter(lambda edge, done: not done, stars)
                | "Rest" >> beam.CombineGlobally(components()) | "RestClusters" >> beam.FlatMap(UnionFind.clusters))
        return (centred, rest) | "Clusters" >> beam.Flatten()


def _both_ends(edge: tuple[Node, Node]) -> Iterator[tuple[Node, Node]]:
    """An undirected edge filed under each end."""
    yield edge
    yield edge[::-1]


def _neighbours(node: Node, neighbours: Iterable[Node]) -> tuple[Node, list[Node]]:
    return node, sorted(set(neighbours))


def _centred(node: tuple[Node, list[Node]], done: bool) -> Iterator[list[Node]]:
    """The cluster centred at a node (with its neighbours), once every node is a star."""
    if done and (cluster := star_rules.star_cluster(*node)):
        yield cluster


def _apply(group: tuple[Node, Iterable[Node]], rule: Callable[[Node, list[Node]], list[tuple[Node, Node]]]
           ) -> Iterator[tuple[Node, Node]]:
    """One rule at one node (with its neighbours); its edges filed under both ends."""
    for edge in rule(*_neighbours(*group)):
        yield from _both_ends(edge)


def _content_keys(element: tuple[Order, Document], config: DedupConfig) -> Iterator[tuple[tuple[int, int], Node]]:
    order, doc = element
    content, _ = _fingerprint([doc.text], config)
    scope = hash64(_scope_of(doc, config.scope))
    yield (int(content[0, 0]) ^ scope, int(content[0, 1])), (doc.id, order, doc.metadata.get(CLUSTER_SIZE, 1))


def _band_records(batch: list[tuple[Order, Document]], config: DedupConfig
                  ) -> Iterator[tuple[tuple[int, int], tuple[Order, str, np.ndarray, int]]]:
    """One record per document and band, keyed as in corpus.py: (scope hash + band index, band hash)."""
    _, sigs = _fingerprint([doc.text for _, doc in batch], config)
    keys = minhash.band_keys(sigs, config.bands, config.rows)
    for (order, doc), sig, bands in zip(batch, sigs, keys.tolist()):
        scope = hash64(_scope_of(doc, config.scope))
        for band, key in enumerate(bands):
            yield ((scope + band) % 2**64, key), (order, doc.id, sig, doc.metadata.get(CLUSTER_SIZE, 1))


def _star_edges(group: tuple[Any, Iterable[tuple[Order, str, np.ndarray, int]]],
                threshold: float | None) -> Iterator[tuple[Node, Node]]:
    """Edges from the earliest document sharing this band to each other one, those verified by Jaccard."""
    members = sorted(group[1], key=lambda m: m[0])
    if len(members) < 2:
        return
    sigs = np.stack([member[2] for member in members])
    edges = np.stack([np.zeros(len(members) - 1, np.int64), np.arange(1, len(members))], axis=1)
    if threshold is not None:
        edges = edges[minhash.estimated_jaccard(sigs, edges) >= threshold]
    for a, b in edges.tolist():
        yield _node(members[a]), _node(members[b])


def _node(member: tuple[Order, str, np.ndarray, int]) -> Node:
    order, doc_id, _, size = member
    return doc_id, order, size


def components() -> Accumulate:
    """Connected components of (node, node) edges as one union-find (see the module docstring)."""
    return Accumulate(UnionFind, _union_edge, _union_sets)


def _union_edge(sets: UnionFind, edge: tuple[Node, Node]) -> None:
    sets.union(*edge)


def _union_sets(sets: UnionFind, other: UnionFind) -> None:
    for cluster in other.clusters():
        for node in cluster[1:]:
            sets.union(cluster[0], node)


def _verdicts(clusters, reason: Removed):
    """Clusters (lists of nodes) -> (verdicts, cluster records) keeping the smallest id of each."""
    records = clusters | "Verdicts" >> beam.FlatMap(_cluster_verdicts, reason).with_outputs("cluster", main="verdict")
    return records.verdict, records.cluster


def _cluster_verdicts(members: list[Node], reason: Removed) -> Iterator[Any]:
    """(id, Duplicate) for all but the keeper; tagged "cluster": (keeper id, members, earliest removed order,
    CLUSTER_SIZE)."""
    if len(members) < 2:
        return
    kept, *removed = sorted(members)  # by id: clusters.keeper's rule
    for doc_id, *_ in removed:
        yield doc_id, Duplicate(reason, kept[0])
    yield beam.pvalue.TaggedOutput("cluster", (kept[0], len(members), min(node[1] for node in removed),
                                               sum(node[2] for node in members)))


def cluster_report(clusters: Iterable[tuple[str, int, Order, int]]) -> dict[str, Any]:
    """The corpus report of a dedup stage, as stages/dedup.py's local one: clusters, their sizes, the largest.

    Ties among the largest are broken by the earliest removed member, the order
    in which the local driver lists its verdicts.
    """
    clusters = sorted(clusters, key=lambda c: (-c[1], c[2]))
    sizes = collections.Counter(size for _, size, *_ in clusters)
    return {"clusters": len(clusters), "cluster_sizes": {str(k): v for k, v in sorted(sizes.items())},
            "largest_clusters": [[kept, size] for kept, size, *_ in clusters[:LARGEST_CLUSTERS]]}
