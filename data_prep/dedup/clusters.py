"""Duplicate clusters from edges (union-find), and which document of each cluster stays.

Near-duplicate relations are not transitive, but a corpus should keep one document
per connected group: if A ~ B and B ~ C, keeping A alone removes the text of all three
once. FineWeb does the same with union-find over its MinHash pairs.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

import numpy as np

LARGEST_CLUSTERS = 5  # listed in a dedup stage's report


class UnionFind:
    """Disjoint sets of document indices, holding only those that appear in an edge.

    Memory grows with the number of duplicated documents, not with the corpus.
    The root of a set is its smallest index, so results do not depend on edge order.
    """

    def __init__(self):
        self._parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self._parent
        while (p := parent.get(x, x)) != x:
            parent[x] = parent.get(p, p)  # path halving
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            root, child = min(ra, rb), max(ra, rb)
            self._parent[child] = root
            self._parent.setdefault(root, root)

    def union_edges(self, edges: np.ndarray) -> None:
        """Joins the two ends of every row of an [m, 2] edge array."""
        for a, b in edges.tolist():
            self.union(a, b)

    def clusters(self) -> list[list[int]]:
        """Every set of two or more indices, each sorted, ordered by their smallest index."""
        members = collections.defaultdict(list)
        for x in self._parent:
            members[self.find(x)].append(x)
        return sorted((sorted(m) for m in members.values() if len(m) > 1), key=lambda m: m[0])


def clusters_from_edges(edges: Iterable[np.ndarray]) -> list[list[int]]:
    """The connected components (of two or more) of a stream of [m, 2] edge arrays."""
    sets = UnionFind()
    for chunk in edges:
        sets.union_edges(chunk)
    return sets.clusters()


def keeper(cluster: Sequence[int], ids: Sequence[str]) -> int:
    """The member to keep: the smallest document id.

    Ids are stable across runs and do not depend on the order documents were read
    in, so the same document stays whatever the sharding. (Keeping the longest text
    would keep the most content, but makes the choice depend on the text as well.)
    """
    return min(cluster, key=ids.__getitem__)


def size_histogram(clusters: Iterable[Sequence[int]]) -> dict[int, int]:
    """Number of clusters of each size, by increasing size."""
    return dict(sorted(collections.Counter(len(c) for c in clusters).items()))
