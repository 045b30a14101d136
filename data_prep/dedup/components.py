"""Connected components one node at a time: the large-star / small-star rules.

A union-find must see every edge, so its one worker holds an entry per duplicated
document. These rules instead look at one node and its neighbours, so the edges can
be split across workers by node (a hash partition locally, a GroupByKey in Beam), each
round a shuffle. Alternated, they keep every component and turn it into a star around
its smallest node, in O(log^2 n) rounds and a few in practice (Kiveris et al.,
"Connected Components in MapReduce and Beyond", SoCC 2014,
https://doi.org/10.1145/2670979.2670997). Nodes are anything ordered; the smallest
node of a component becomes its centre, so make the keeper the smallest node.

Each rule returns undirected edges (a, b); a runner files each under both ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Edge = tuple[Any, Any]


def large_star(node: Any, neighbours: Sequence[Any]) -> list[Edge]:
    """Every larger neighbour links to the smallest of the node and its neighbours instead."""
    centre = min(node, *neighbours)
    return [(v, centre) for v in neighbours if v > node]


def small_star(node: Any, neighbours: Sequence[Any]) -> list[Edge]:
    """The node and its smaller neighbours all link to the smallest of those (its larger ones are theirs to move)."""
    smaller = [v for v in neighbours if v < node]
    if not smaller:
        return []
    centre = min(smaller)
    return [(v, centre) for v in (*smaller, node) if v != centre]


def is_star(node: Any, neighbours: Sequence[Any]) -> bool:
    """Converged here: a centre (no smaller neighbour) or a leaf (one neighbour). True at every node
    means every component is a star around its smallest node."""
    return len(neighbours) == 1 or all(v > node for v in neighbours)


def star_cluster(node: Any, neighbours: Sequence[Any]) -> list[Any] | None:
    """Once converged: a centre's component, itself and its neighbours in order; None at a leaf."""
    return [node, *neighbours] if all(v > node for v in neighbours) else None
