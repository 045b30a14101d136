"""Union-find joins chains into one cluster, whatever the edge order; the keeper is the smallest id."""

import random

import numpy as np

from data_prep.dedup.clusters import UnionFind, clusters_from_edges, keeper, size_histogram


def test_union_find_is_transitive():
    # 1~2 and 2~3 put 1 and 3 together though they share no edge; 7~8 stays apart.
    assert clusters_from_edges([np.array([[2, 3], [7, 8]]), np.array([[1, 2]])]) == [[1, 2, 3], [7, 8]]


def test_clusters_do_not_depend_on_edge_order():
    edges = [(a, a + 1) for a in range(0, 40, 2)] + [(a, a + 2) for a in range(0, 20, 4)]
    expected = clusters_from_edges([np.array(edges)])
    for seed in range(5):
        shuffled = random.Random(seed).sample(edges, len(edges))
        assert clusters_from_edges([np.array([(b, a) for a, b in shuffled])]) == expected


def test_roots_are_the_smallest_member():
    sets = UnionFind()
    sets.union(9, 4)
    sets.union(4, 6)
    assert sets.find(9) == sets.find(6) == 4


def test_keeper_is_the_smallest_id_not_the_first_index():
    ids = ["web/b", "web/c", "web/a"]
    assert keeper([0, 1, 2], ids) == 2


def test_size_histogram():
    assert size_histogram([[1, 2], [3, 4, 5], [6, 7]]) == {2: 2, 3: 1}
